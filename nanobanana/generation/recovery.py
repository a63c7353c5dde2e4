"""The sweep (`generation.sweep`, every 30 s): requests whose next step was
lost go on. A task lost with its worker or its broker message, a start that
never ran, an outcome never delivered, and a claim whose process died."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from nanobanana.core import clock
from nanobanana.core.process import process_gone, this_machine_prefix
from nanobanana.core.tasks import enqueue
from nanobanana.generation.models import DeliveryStatus, GenerationRequest, RequestStatus
from nanobanana.generation.services import (
    POLL_GRACE,
    REDRIVE_AFTER,
    TASK_DELIVER,
    TASK_POLL,
    TASK_START,
    not_after,
)

logger = logging.getLogger(__name__)
SWEEP_BATCH = 500
_ENDED = Q(status__in=(RequestStatus.SUCCEEDED, RequestStatus.FAILED), delivery_status=DeliveryStatus.PENDING)


@dataclass(frozen=True)
class SweepReport:
    polled: int
    restarted: int
    redelivered: int
    orphans: int = 0  # claims given back early: their process had died (counted in polled/redelivered too)


def requests_sweep() -> SweepReport:
    """Re-drive requests whose next step was lost: never-started queued jobs,
    overdue or past-deadline polls, outcomes never delivered, and the polls
    and deliveries whose claim a dead process held."""
    now = clock.now()
    overdue = list(
        GenerationRequest.objects.filter(status=RequestStatus.PROCESSING)
        .filter(Q(next_poll_at__lt=now - POLL_GRACE) | Q(deadline_at__lt=now) | Q(next_poll_at__isnull=True))
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    stale_queued = list(
        GenerationRequest.objects.filter(status=RequestStatus.QUEUED, created_at__lt=now - REDRIVE_AFTER).values_list(
            "pk", flat=True
        )[:SWEEP_BATCH]
    )
    undelivered = list(
        GenerationRequest.objects.filter(_ENDED, finished_at__lt=now - REDRIVE_AFTER)
        .filter(not_after("delivery_claimed_until", now))
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    orphan_polls = _dead_holders_release("poll", Q(status=RequestStatus.PROCESSING), now=now)
    orphan_deliveries = _dead_holders_release("delivery", _ENDED, now=now)
    overdue = [pk for pk in overdue if pk not in orphan_polls] + orphan_polls
    undelivered = [pk for pk in undelivered if pk not in orphan_deliveries] + orphan_deliveries
    with transaction.atomic():
        for request_id in overdue:
            enqueue(TASK_POLL, request_id)
        for request_id in stale_queued:
            enqueue(TASK_START, request_id)
        for request_id in undelivered:
            enqueue(TASK_DELIVER, request_id)
    return SweepReport(
        polled=len(overdue),
        restarted=len(stale_queued),
        redelivered=len(undelivered),
        orphans=len(orphan_polls) + len(orphan_deliveries),
    )


def _dead_holders_release(claim: str, scope: Q, *, now: datetime) -> list[int]:
    """Give back the `claim` ("poll" or "delivery") of requests in `scope`
    still held by a process of this machine that has died (a worker killed
    mid-call), so they go on now rather than when the lease runs out,
    minutes later (decision 511). Only a process proven gone loses its
    claim (`process_gone`): one that is merely slow, or runs on another
    machine, keeps it until the lease ends. Each claim is given back only as
    it was read (same holder, same lease end), so one taken again meanwhile
    stays. Returns the ids of the requests given back."""
    machine = this_machine_prefix()
    if not machine:
        return []
    until_field, holder_field = f"{claim}_claimed_until", f"{claim}_claimed_by"
    held = GenerationRequest.objects.filter(
        scope, **{f"{until_field}__gt": now, f"{holder_field}__startswith": machine}
    ).values_list("pk", holder_field, until_field)[:SWEEP_BATCH]
    released = [
        pk
        for pk, holder, until in held
        if process_gone(holder)
        and GenerationRequest.objects.filter(pk=pk, **{holder_field: holder, until_field: until}).update(
            **{until_field: None}
        )
    ]
    if released:
        logger.warning("claims of a process that died given back", extra={"claim": claim, "request_ids": released[:20]})
    return released
