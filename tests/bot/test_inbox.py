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


@pytest.mark.django_db(transaction=True)
def test_update_is_stored_when_the_broker_is_down_and_redrive_queues_it(monkeypatch, settings):
    """A stored update whose task could not be sent is not an error for Telegram; the sweep queues it."""
    from datetime import timedelta

    from nanobanana.bot.inbox import inbox_redrive, inbox_store
    from nanobanana.bot.models import InboxUpdate
    from nanobanana.core import tasks as core_tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(core_tasks, "send", broker_down)
    assert inbox_store(update_id=4242, payload={"update_id": 4242}) is True
    assert InboxUpdate.objects.filter(update_id=4242).exists()

    sent = []
    monkeypatch.setattr(core_tasks, "send", lambda name, args, countdown: sent.append((name, args)))
    InboxUpdate.objects.filter(update_id=4242).update(
        received_at=InboxUpdate.objects.get(update_id=4242).received_at - timedelta(hours=1)
    )
    assert inbox_redrive() == 1
    assert sent == [("bot.handle_update", [4242])]
