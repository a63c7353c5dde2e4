"""One update of a person in a chat handled at a time.

The worker's slots (and worker processes) take updates from one queue, so
two quick taps of one person can be handled at once: the second reads the
draft before the first has written it (seen once in the sandbox: a 16:9 tap
followed at once by "Next" showed the old 1:1 in the prompt message).
aiogram serializes handlers per FSM key when the dispatcher has an "events
isolation"; with Redis (production) the lock is a Redis key shared by every
process, else (`make run`, tests) a lock per key inside the process.

A lock is held for one handler run. A worker killed mid-handler leaves its
lock to expire after `LOCK_TTL_SECONDS`; an update that cannot get its lock
within `LOCK_WAIT_SECONDS` is retried later (a `TransientError`: back to the
inbox, re-driven by the sweep), never handled alongside.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator

from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, KeyBuilder, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis
from redis.exceptions import LockError

from nanobanana.core.errors import TransientError

logger = logging.getLogger(__name__)

# Longer than any handler runs (its sends wait at most 10 s for Telegram's
# limits), short enough that a killed worker's lock frees soon.
LOCK_TTL_SECONDS = 60.0
# How long an update waits for the same person's update before it.
LOCK_WAIT_SECONDS = 10.0
LOCK_POLL_SECONDS = 0.02


class RedisChatIsolation(BaseEventIsolation):
    """aiogram's events isolation on a Redis lock per FSM key (redis-py's
    `Lock`: SET NX PX to take it, a token-checked delete to give it back)."""

    def __init__(self, redis: Redis, key_builder: KeyBuilder) -> None:
        self.redis = redis
        self.key_builder = key_builder

    @contextlib.asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        lock = self.redis.lock(
            self.key_builder.build(key, "lock"),
            timeout=LOCK_TTL_SECONDS,
            sleep=LOCK_POLL_SECONDS,
            blocking_timeout=LOCK_WAIT_SECONDS,
        )
        if not await lock.acquire():
            raise TransientError("an earlier update of this chat is still being handled")
        try:
            yield
        finally:
            try:
                await lock.release()
            except LockError:  # held past its TTL and taken by nobody or by the next update: nothing to give back
                logger.warning("update lock expired before its handler ended", extra={"chat_id": key.chat_id})

    async def close(self) -> None:
        # The connections belong to the loop that opened them (the bot
        # runtime's): the next loop opens its own.
        await self.redis.connection_pool.disconnect()


def isolation_for(storage: BaseStorage) -> BaseEventIsolation:
    """The isolation that matches the FSM storage: shared through Redis, or per process."""
    if isinstance(storage, RedisStorage):
        return RedisChatIsolation(storage.redis, storage.key_builder)
    return SimpleEventIsolation()
