"""Celery shims for the generation lifecycle (queue: generation)."""

from __future__ import annotations

from celery import shared_task

from nanobanana.core.tasks import AppTask
from nanobanana.generation import recovery, services


# Synchronous image APIs answer within the call (Gemini: one call per image),
# so start and poll may take minutes; the worker drains for 330 s on deploy.
@shared_task(name="generation.start", base=AppTask, time_limit=300, soft_time_limit=280)
def start(request_id: int) -> None:
    services.request_start(request_id=request_id)


@shared_task(name="generation.poll", base=AppTask, time_limit=300, soft_time_limit=280)
def poll(request_id: int) -> None:
    services.request_poll(request_id=request_id)


@shared_task(name="generation.sweep", base=AppTask, time_limit=60, soft_time_limit=50)
def sweep() -> dict[str, int]:
    report = recovery.requests_sweep()
    return {
        "polled": report.polled,
        "restarted": report.restarted,
        "redelivered": report.redelivered,
        "orphans": report.orphans,
    }


@shared_task(name="generation.poll_batch", base=AppTask, time_limit=300, soft_time_limit=280)
def poll_batch(provider_name: str, window: int | None = None) -> dict[str, int]:
    report = services.requests_poll_batch(provider_name=provider_name, window=window)
    return {"asked": report.asked, "waiting": report.waiting, "handed_on": report.handed_on}


@shared_task(name="generation.complete_many", base=AppTask, time_limit=300, soft_time_limit=280)
def complete_many(request_ids: list[int]) -> int:
    return len(services.requests_complete_many(request_ids=request_ids))
