"""JSON log lines on stdout, with every configured secret redacted.

Railway records anything on stderr as an error, so all logs go to stdout and
carry their real level in a `level` field.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import cache
from typing import Any

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
REDACTED = "[redacted]"


SECRET_NAME_SUFFIXES = ("_TOKEN", "_SECRET", "_KEY", "_PASSWORD", "_DSN", "SECRET_KEY")


@cache
def _secrets() -> tuple[str, ...]:
    """Every configured value whose setting name says it is a secret
    (`TELEGRAM_BOT_TOKEN`, `TG_WEBHOOK_SECRET`, `OPENAI_API_KEY`, ...)."""
    from django.conf import settings

    values = {
        str(getattr(settings, name) or "")
        for name in dir(settings)
        if name.isupper() and name.endswith(SECRET_NAME_SUFFIXES) and isinstance(getattr(settings, name), str)
    }
    # The token's secret half is as sensitive as the whole token.
    token = str(getattr(settings, "TELEGRAM_BOT_TOKEN", "") or "")
    if ":" in token:
        values.add(token.split(":", 1)[1])
    return tuple(sorted((value for value in values if len(value) >= 8), key=len, reverse=True))


def redact(text: str) -> str:
    """Replace every configured secret in `text`."""
    for secret in _secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)
