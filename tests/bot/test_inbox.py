"""Re-drive of stored but unhandled updates, and the claim that prevents double handling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from nanobanana.bot.inbox import inbox_backlog, inbox_claim, inbox_redrive, inbox_retry_later, inbox_store
from nanobanana.bot.models import InboxStatus, InboxUpdate

pytestmark = pytest.mark.django_db(transaction=True)


def age(update_id: int, seconds: int, **fields) -> None:
    past = timezone.now() - timedelta(seconds=seconds)
    InboxUpdate.objects.filter(update_id=update_id).update(received_at=past, **fields)


def test_a_claimed_update_cannot_be_claimed_again(task_queue):
    inbox_store(update_id=1, payload={"update_id": 1})
    assert inbox_claim(update_id=1) is not None
    assert inbox_claim(update_id=1) is None


def test_redrive_requeues_old_pending_and_stuck_processing_updates(task_queue):
    for update_id in (1, 2, 3):
        inbox_store(update_id=update_id, payload={"update_id": update_id})
    task_queue.pending.clear()
    age(1, 600)  # lost task
    age(2, 600, status=InboxStatus.PROCESSING, started_at=timezone.now() - timedelta(seconds=600))  # dead worker
    # 3 is fresh: its task is probably still in the queue.
    assert inbox_redrive() == 2
    assert sorted(args[0] for _, args, _ in task_queue.pending) == [1, 2]
    assert InboxUpdate.objects.get(update_id=2).status == InboxStatus.PENDING


def test_retry_later_parks_the_update_as_failed_after_the_attempt_limit(task_queue, settings):
    settings.INBOX_MAX_ATTEMPTS = 2
    inbox_store(update_id=9, payload={"update_id": 9})
    inbox_claim(update_id=9)
    inbox_retry_later(update_id=9, error="boom")
    assert InboxUpdate.objects.get(update_id=9).status == InboxStatus.PENDING
    inbox_claim(update_id=9)
    inbox_retry_later(update_id=9, error="boom")
    assert InboxUpdate.objects.get(update_id=9).status == InboxStatus.FAILED


def test_backlog_counts_only_old_unhandled_updates(task_queue):
    inbox_store(update_id=1, payload={})
    inbox_store(update_id=2, payload={})
    inbox_store(update_id=3, payload={})
    age(1, 600)
    age(3, 600, status=InboxStatus.DONE)
    assert inbox_backlog() == 1
