"""Handling a stored update: what an outage of Redis leaves behind."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from aiogram.fsm.storage.memory import MemoryStorage

from nanobanana.bot.dispatcher import build_dispatcher
from nanobanana.bot.inbox import inbox_store
from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.bot.runtime import runtime_reset
from nanobanana.bot.updates import update_handle

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


def text_update(update_id: int) -> dict[str, Any]:
    user = {"id": 4_100_000, "is_bot": False, "first_name": "Аня", "language_code": "ru"}
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
