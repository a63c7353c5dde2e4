"""Reading a deployment's logs the way the app writes them: JSON lines with a
`level` field. Railway records all of stderr as severity `error`, so the
severity is never trusted; a line without a JSON level is not counted."""

from __future__ import annotations

import json

from deployctl.clients.railway import LogLine

ERROR_LEVELS = frozenset({"error", "critical", "fatal"})


def log_level(line: LogLine) -> str | None:
    """The line's own `level`: Railway's parsed attribute, else the JSON message's."""
    attribute = line.attributes.get("level")
    if attribute:
        return attribute.strip().strip('"').lower()
    try:
        payload = json.loads(line.message)
    except ValueError:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("level"), str):
        return str(payload["level"]).lower()
    return None


def error_lines(lines: list[LogLine]) -> list[LogLine]:
    return [line for line in lines if log_level(line) in ERROR_LEVELS]


def summary(line: LogLine, limit: int = 160) -> str:
    """A short, single-line form of a log line for a report."""
    try:
        payload = json.loads(line.message)
    except ValueError:
        payload = None
    text = line.message
    if isinstance(payload, dict):
        text = str(payload.get("message") or payload.get("event") or line.message)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
