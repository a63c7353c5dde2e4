"""Time, in one place so tests can move it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def local(moment: datetime | None = None) -> datetime:
    """`moment` (now when None) on the bot's wall clock, BOT_TIME_ZONE: where
    the daily bonus's day turns and the times the bot shows are read."""
    return (moment or now()).astimezone(ZoneInfo(settings.BOT_TIME_ZONE))
