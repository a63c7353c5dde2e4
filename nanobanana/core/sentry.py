"""Error reporting to Sentry when `SENTRY_DSN` is set; nothing otherwise.

Every event passes through the same redaction as the logs before it leaves
the process: the bot token sits in every Bot API URL aiohttp reports."""

from __future__ import annotations

import json
from typing import Any

from nanobanana.core.logging import redact


def scrub(event: Any, hint: Any = None) -> Any:
    """Sentry's before_send/before_breadcrumb: the event with every secret replaced."""
    return json.loads(redact(json.dumps(event, default=str)))


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> bool:
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=scrub,
        before_breadcrumb=scrub,
    )
    return True
