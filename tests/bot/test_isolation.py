"""One update of a person handled at a time: the per-chat lock around
handlers, on a real Redis and in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiogram.fsm.storage.base import BaseEventIsolation, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis

from nanobanana.bot import isolation as isolation_module
from nanobanana.bot.fsm import DatabaseStorage
from nanobanana.bot.isolation import RedisChatIsolation, isolation_for
from nanobanana.core.errors import TransientError

REDIS_URL = "redis://127.0.0.1:6379/15"


def key(chat_id: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=chat_id, user_id=chat_id)


@pytest.fixture
async def redis_isolation() -> AsyncIterator[RedisChatIsolation]:
    client = Redis.from_url(REDIS_URL)
    builder = DefaultKeyBuilder(prefix=f"test-isolation-{uuid.uuid4().hex}", with_bot_id=True, with_destiny=True)
    yield RedisChatIsolation(client, builder)
    keys = [name async for name in client.scan_iter(match=f"{builder.prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.connection_pool.disconnect()


@pytest.fixture(params=["redis", "process"])
async def isolation(request, redis_isolation) -> BaseEventIsolation:
    return redis_isolation if request.param == "redis" else SimpleEventIsolation()


async def run(isolation: BaseEventIsolation, chat_id: int, name: str, events: list[str]) -> None:
    async with isolation.lock(key(chat_id)):
        events.append(f"{name} in")
        await asyncio.sleep(0.1)
        events.append(f"{name} out")


async def test_one_persons_handlers_take_turns(isolation):
    events: list[str] = []
    await asyncio.gather(run(isolation, 7, "a", events), run(isolation, 7, "b", events))
    assert events in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_different_peoples_handlers_run_alongside(isolation):
    events: list[str] = []
    await asyncio.gather(run(isolation, 7, "a", events), run(isolation, 8, "b", events))
    assert sorted(events[:2]) == ["a in", "b in"]  # both in before either is out


async def test_an_update_that_waits_too_long_is_retried_later_not_run_alongside(redis_isolation, monkeypatch):
    monkeypatch.setattr(isolation_module, "LOCK_WAIT_SECONDS", 0.1)
    await redis_isolation.redis.set(redis_isolation.key_builder.build(key(7), "lock"), b"held by a dead worker")
    with pytest.raises(TransientError):
        async with redis_isolation.lock(key(7)):
            pytest.fail("ran while another update of the chat held the lock")


async def test_a_lock_that_expired_under_a_long_handler_is_not_an_error(redis_isolation, monkeypatch, caplog):
    monkeypatch.setattr(isolation_module, "LOCK_TTL_SECONDS", 0.05)
    async with redis_isolation.lock(key(7)):
        await asyncio.sleep(0.1)  # the lock expired meanwhile
        async with redis_isolation.lock(key(7)):  # so the next update of the chat may take it
            pass
    assert "update lock expired before its handler ended" in caplog.text


def test_the_isolation_matches_the_storage():
    assert isinstance(isolation_for(DatabaseStorage()), SimpleEventIsolation)
    storage = RedisStorage.from_url(REDIS_URL)
    isolation = isolation_for(storage)
    assert isinstance(isolation, RedisChatIsolation)
    assert isolation.redis is storage.redis
