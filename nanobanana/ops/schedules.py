"""Periodic schedules, as code, written into django-celery-beat's tables by
`manage.py setup_defaults`. Rows we own carry the `nanobanana:` prefix; ours
that are no longer listed here are disabled."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

PREFIX = "nanobanana:"


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    expires_seconds: int


SCHEDULES = (
    Schedule("heartbeat", "ops.heartbeat", every_seconds=15, expires_seconds=15),
    Schedule("inbox-redrive", "bot.inbox_redrive", every_seconds=30, expires_seconds=30),
    Schedule("generation-sweep", "generation.sweep", every_seconds=30, expires_seconds=30),
    # Daily; a run missed by more than an hour waits for the next day.
    Schedule("reconcile", "ops.reconcile", every_seconds=24 * 3600, expires_seconds=3600),
)


@transaction.atomic
def schedules_sync() -> list[str]:
    """Create or update every schedule; returns the names written."""
    written = []
    for schedule in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.every_seconds, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.update_or_create(
            name=PREFIX + schedule.name,
            defaults={
                "task": schedule.task,
                "interval": interval,
                "enabled": True,
                # A tick missed while the worker was down is not worth running late.
                "expire_seconds": schedule.expires_seconds,
            },
        )
        written.append(PREFIX + schedule.name)
    PeriodicTask.objects.filter(name__startswith=PREFIX).exclude(name__in=written).update(enabled=False)
    return written
