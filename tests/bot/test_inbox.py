"""Re-drive of stored but unhandled updates, and the claim that prevents double handling."""

from __future__ import annotations

from collections import deque
from datetime import timedelta

import pytest
from django.db import DataError, OperationalError, transaction
from django.utils import timezone

from nanobanana.bot.inbox import (
    HANDLE_CHUNK,
    IncomingUpdate,
    inbox_backlog,
    inbox_claim,
    inbox_redrive,
    inbox_retry_later,
    inbox_store,
    inbox_store_many,
)
from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.core import tasks as core_tasks
from tests.bot.conftest import SQLSTATE_ADMIN_SHUTDOWN, SQLSTATE_DATA_EXCEPTION

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


def test_update_is_stored_when_the_broker_is_down_and_redrive_queues_it(monkeypatch, settings):
    """A stored update whose task could not be sent is not an error for Telegram; the sweep queues it."""

    def broker_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(core_tasks, "send_many", broker_down)
    assert inbox_store(update_id=4242, payload={"update_id": 4242}) is True
    assert InboxUpdate.objects.filter(update_id=4242).exists()

    sent = []
    monkeypatch.setattr(core_tasks, "send", lambda name, args, countdown: sent.append((name, args)))
    InboxUpdate.objects.filter(update_id=4242).update(
        received_at=InboxUpdate.objects.get(update_id=4242).received_at - timedelta(hours=1)
    )
    assert inbox_redrive() == 1
    assert sent == [("bot.handle_update", [4242])]


def incoming(update_id: int, *, handled: bool = False) -> IncomingUpdate:
    return IncomingUpdate(update_id=update_id, payload_json=f'{{"update_id": {update_id}}}', handled=handled)


def test_many_updates_are_one_statement_and_only_new_ones_are_queued(task_queue, inbox_transactions):
    inbox_store_many(updates=[incoming(1)])
    task_queue.pending.clear()
    stored = inbox_store_many(updates=[incoming(1), incoming(2), incoming(3), incoming(2)])
    assert stored == {2, 3}
    assert InboxUpdate.objects.count() == 3
    assert inbox_transactions() == 2
    assert task_queue.pending == deque([("bot.handle_updates", [[2, 3]], None)])  # one task for both
    assert InboxUpdate.objects.get(update_id=2).payload == {"update_id": 2}


def test_stored_updates_are_queued_a_chunk_to_a_task(task_queue):
    inbox_store_many(updates=[incoming(update_id) for update_id in range(1, 2 * HANDLE_CHUNK + 4)])
    assert [args[0] for _, args, _ in task_queue.pending] == [
        list(range(1, HANDLE_CHUNK + 1)),
        list(range(HANDLE_CHUNK + 1, 2 * HANDLE_CHUNK + 1)),
        list(range(2 * HANDLE_CHUNK + 1, 2 * HANDLE_CHUNK + 4)),
    ]
    assert set(task_queue.names()) == {"bot.handle_updates"}


def test_handled_updates_are_stored_done_and_never_queued(task_queue):
    assert inbox_store_many(updates=[incoming(5, handled=True), incoming(6)]) == {5, 6}
    done = InboxUpdate.objects.get(update_id=5)
    assert (done.status, done.started_at is not None, done.handled_at is not None) == (InboxStatus.DONE, True, True)
    assert InboxUpdate.objects.get(update_id=6).status == InboxStatus.PENDING
    assert task_queue.updates() == [6]


@pytest.mark.parametrize(
    ("sqlstate", "error"), [(SQLSTATE_ADMIN_SHUTDOWN, OperationalError), (SQLSTATE_DATA_EXCEPTION, DataError)]
)
def test_a_failure_at_one_row_stores_none_of_the_statement(task_queue, inbox_insert_fails, sqlstate, error):
    inbox_insert_fails(3, sqlstate)
    with pytest.raises(error):
        inbox_store_many(updates=[incoming(1), incoming(2), incoming(3), incoming(4)])
    assert not InboxUpdate.objects.exists()
    assert task_queue.names() == []


def test_inside_a_transaction_the_tasks_wait_for_its_commit_and_vanish_with_its_rollback(task_queue):
    with transaction.atomic():
        inbox_store_many(updates=[incoming(1)])
        assert task_queue.names() == []
    assert task_queue.updates() == [1]

    def store_then_fail() -> None:
        with transaction.atomic():
            inbox_store_many(updates=[incoming(2)])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        store_then_fail()
    assert not InboxUpdate.objects.filter(update_id=2).exists()
    assert task_queue.updates() == [1]
