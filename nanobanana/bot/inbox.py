"""The inbox: Telegram updates are stored first, handled after.

Services for the webhook, the long-polling loop, the update task and the
re-drive sweep."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.core import clock
from nanobanana.core import tasks as core_tasks
from nanobanana.core.tasks import enqueue

TASK_HANDLE = "bot.handle_update"
logger = logging.getLogger(__name__)


def inbox_store(*, update_id: int, payload: dict[str, Any], handled: bool = False) -> bool:
    """Store an update once and queue it for handling. Returns False for a
    duplicate `update_id` (already stored; nothing is queued again).

    Once the row is committed the update is safe: if the broker cannot take
    the task (Redis down), the re-drive sweep queues it later, so that is
    logged, not raised (raising made the webhook answer 500 for an update it
    had stored).

    `handled`: the webhook answered it itself (a pre-checkout query); it is
    kept for the record, already done, and never queued."""
    try:
        with transaction.atomic():
            if handled:
                now = clock.now()
                InboxUpdate.objects.create(
                    update_id=update_id, payload=payload, status=InboxStatus.DONE, started_at=now, handled_at=now
                )
                return True
            InboxUpdate.objects.create(update_id=update_id, payload=payload)
            transaction.on_commit(lambda: _queue(update_id))
    except IntegrityError:
        return False
    return True


def _queue(update_id: int) -> None:
    try:
        core_tasks.send(TASK_HANDLE, [update_id], None)
    except Exception as error:  # the broker's errors vary by transport; the row is stored either way
        logger.warning(
            "update stored but not queued; the re-drive sweep will queue it",
            extra={"update_id": update_id, "error_type": type(error).__name__},
        )


def inbox_claim(*, update_id: int) -> InboxUpdate | None:
    """Take a pending update for handling; None if someone else has it or it is done."""
    claimed = InboxUpdate.objects.filter(update_id=update_id, status=InboxStatus.PENDING).update(
        status=InboxStatus.PROCESSING, started_at=clock.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return InboxUpdate.objects.get(update_id=update_id)


def inbox_finish(*, update_id: int) -> None:
    InboxUpdate.objects.filter(update_id=update_id, status=InboxStatus.PROCESSING).update(
        status=InboxStatus.DONE, handled_at=clock.now(), error=""
    )


def inbox_retry_later(*, update_id: int, error: str) -> None:
    """A transient failure: back to pending for the re-drive sweep, until the
    attempt limit, after which it is parked as failed for an operator."""
    InboxUpdate.objects.filter(
        update_id=update_id, status=InboxStatus.PROCESSING, attempts__lt=settings.INBOX_MAX_ATTEMPTS
    ).update(status=InboxStatus.PENDING, error=error[:2000])
    inbox_fail(update_id=update_id, error=error)


def inbox_fail(*, update_id: int, error: str) -> None:
    InboxUpdate.objects.filter(update_id=update_id, status=InboxStatus.PROCESSING).update(
        status=InboxStatus.FAILED, handled_at=clock.now(), error=error[:2000]
    )


def inbox_redrive() -> int:
    """Queue again what was stored but not handled: pending rows whose task
    was lost, and rows stuck in processing by a worker that died."""
    cutoff = clock.now() - timedelta(seconds=settings.INBOX_REDRIVE_AFTER_SECONDS)
    with transaction.atomic():
        stuck = InboxUpdate.objects.filter(status=InboxStatus.PROCESSING, started_at__lt=cutoff)
        stuck.filter(attempts__gte=settings.INBOX_MAX_ATTEMPTS).update(
            status=InboxStatus.FAILED, error="gave up after repeated crashes"
        )
        stuck.update(status=InboxStatus.PENDING)
        ids = list(
            InboxUpdate.objects.filter(status=InboxStatus.PENDING)
            .filter(Q(started_at__lt=cutoff) | Q(started_at__isnull=True, received_at__lt=cutoff))
            .order_by("update_id")
            .values_list("update_id", flat=True)[:1000]
        )
        for update_id in ids:
            enqueue(TASK_HANDLE, update_id)
    return len(ids)


def inbox_backlog() -> int:
    """Updates stored but not handled yet (for the deep health check)."""
    cutoff = clock.now() - timedelta(seconds=settings.INBOX_REDRIVE_AFTER_SECONDS)
    return InboxUpdate.objects.filter(
        status__in=(InboxStatus.PENDING, InboxStatus.PROCESSING), received_at__lt=cutoff
    ).count()
