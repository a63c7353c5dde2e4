"""Handling stored updates: in which order, what one failure does to the
others, and what an outage of Redis leaves behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Update

from nanobanana.bot.dispatcher import build_dispatcher
from nanobanana.bot.inbox import inbox_store
from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.bot.runtime import runtime_reset
from nanobanana.bot.updates import _sender_of, update_handle, updates_handle

pytestmark = pytest.mark.django_db(transaction=True)


class RedisDownStorage(MemoryStorage):
    """The bot's FSM state in a Redis that stopped answering."""

    async def get_state(self, key: Any) -> str | None:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def get_data(self, key: Any) -> dict[str, Any]:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def redis_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    runtime_reset()
    monkeypatch.setattr(build_dispatcher().fsm, "storage", RedisDownStorage())
    yield
    runtime_reset()


USER_5 = {"id": 5, "is_bot": False, "first_name": "A"}
USER_6 = {"id": 6, "is_bot": False, "first_name": "B"}


def text_update(update_id: int, user_id: int = 4_100_000) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Аня", "language_code": "ru"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_767_000_000,
            "chat": {"id": user["id"], "type": "private"},
            "from": user,
            "text": "привет",
        },
    }


def test_an_update_that_meets_a_redis_outage_is_handled_again_later(task_queue, redis_down):
    """Found by the fault suite: with Redis down the handler failed, the user
    heard nothing, and the update was marked done, lost for good."""
    inbox_store(update_id=71, payload=text_update(71))
    assert update_handle(update_id=71) == "retry"
    row = InboxUpdate.objects.get(update_id=71)
    assert row.status == InboxStatus.PENDING  # the redrive sweep queues it again
    assert row.error.startswith("ConnectionError")


def test_a_retried_update_is_a_warning_not_an_error(task_queue, redis_down, caplog):
    """Found by the fault suite: aiogram logged every retried failure at
    ERROR with a traceback ("Cause exception while process update")."""
    caplog.set_level(logging.INFO)
    inbox_store(update_id=72, payload=text_update(72))
    assert update_handle(update_id=72) == "retry"
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert "update will be retried" in [record.getMessage() for record in caplog.records]


def test_a_failing_update_is_logged_once_as_an_error(task_queue, monkeypatch, caplog):
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    runtime_reset()
    monkeypatch.setattr(build_dispatcher(), "feed_update", broken)
    caplog.set_level(logging.INFO)
    inbox_store(update_id=73, payload=text_update(73))
    assert update_handle(update_id=73) == "failed"
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == ["update failed"]
    assert "RuntimeError: a bug" in (errors[0].exc_text or "")  # the traceback, redacted (core/logging.py)
    assert InboxUpdate.objects.get(update_id=73).status == InboxStatus.FAILED
    runtime_reset()


@pytest.fixture
def feed_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Replace the dispatcher's feed (what every handler runs under) for one test."""
    runtime_reset()

    def replace(feed: Any) -> None:
        monkeypatch.setattr(build_dispatcher(), "feed_update", feed)

    yield replace
    runtime_reset()


def test_a_persons_updates_go_in_order_and_other_peoples_alongside(task_queue, feed_with):
    events: list[tuple[str, int]] = []

    async def slow(bot: Any, update: Any) -> None:
        events.append(("start", update.update_id))
        await asyncio.sleep(0.05)
        events.append(("end", update.update_id))

    feed_with(slow)
    for update_id, user_id in ((81, 1), (82, 2), (83, 1)):
        inbox_store(update_id=update_id, payload=text_update(update_id, user_id))
    assert updates_handle(update_ids=[83, 81, 82]) == ["done", "done", "done"]
    assert events.index(("end", 81)) < events.index(("start", 83))  # one person: in update_id order
    assert events.index(("start", 82)) < events.index(("end", 81))  # another person: alongside
    assert set(InboxUpdate.objects.values_list("status", flat=True)) == {InboxStatus.DONE}


def test_one_failing_update_leaves_the_rest_of_its_task_handled(task_queue, feed_with):
    async def fail_one(bot: Any, update: Any) -> None:
        if update.update_id == 91:
            raise RuntimeError("a bug")

    feed_with(fail_one)
    for update_id in (90, 91, 92):
        inbox_store(update_id=update_id, payload=text_update(update_id))  # one person: in a row
    assert updates_handle(update_ids=[90, 91, 92, 90]) == ["done", "failed", "done", "skipped"]
    statuses = dict(InboxUpdate.objects.values_list("update_id", "status"))
    assert statuses == {90: InboxStatus.DONE, 91: InboxStatus.FAILED, 92: InboxStatus.DONE}


def test_a_run_that_fails_before_any_handler_sends_each_update_back(task_queue, monkeypatch):
    def loop_down(work: Any) -> Any:
        raise redis.exceptions.ConnectionError("Connection refused.")

    monkeypatch.setattr("nanobanana.bot.updates.bot_run", loop_down)
    for update_id in (95, 96):
        inbox_store(update_id=update_id, payload=text_update(update_id))
    assert updates_handle(update_ids=[95, 96]) == ["retry", "retry"]
    assert set(InboxUpdate.objects.values_list("status", flat=True)) == {InboxStatus.PENDING}


def test_a_payload_that_is_not_an_update_fails_alone(task_queue, feed_with):
    async def fine(bot: Any, update: Any) -> None:
        return None

    feed_with(fine)
    inbox_store(update_id=97, payload={"update_id": 97, "callback_query": {"id": "q", "from": "nobody"}})
    inbox_store(update_id=98, payload=text_update(98))
    assert updates_handle(update_ids=[97, 98]) == ["failed", "done"]


@pytest.mark.parametrize(
    ("event", "sender"),
    [
        ({"message": {"message_id": 1, "date": 0, "chat": {"id": -7, "type": "group"}, "from": USER_5}}, ("user", 5)),
        ({"callback_query": {"id": "q", "from": USER_6, "chat_instance": "c"}}, ("user", 6)),
        ({"channel_post": {"message_id": 1, "date": 0, "chat": {"id": -100, "type": "channel"}}}, ("chat", -100)),
        (
            {
                "poll": {
                    "id": "p",
                    "question": "?",
                    "options": [],
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                    "allows_revoting": False,
                    "members_only": False,
                }
            },
            ("update", 1),
        ),
    ],
)
def test_whose_update_it_is(event: dict[str, Any], sender: tuple[str, int]) -> None:
    assert _sender_of(Update.model_validate({"update_id": 1, **event})) == sender
