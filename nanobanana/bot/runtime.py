"""One bot runtime per worker process: an event loop, a Bot with one HTTP
session, and the dispatcher, reused by every task the process runs.

Celery tasks are synchronous; they enter the bot through `bot_run`, which
runs a coroutine on the process's loop. Django ORM calls inside handlers go
through `sync_to_async`, which (with no outer async_to_sync) runs them on one
dedicated thread; we close that thread's stale connections after each run."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram import Bot, Dispatcher
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from nanobanana.bot.dispatcher import build_dispatcher
from nanobanana.bot.sender import close_bot, create_bot

T = TypeVar("T")


class BotRuntime:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dispatcher: Dispatcher = build_dispatcher()
        self.bot: Bot | None = None

    def run(self, work: Callable[[Bot, Dispatcher], Awaitable[T]]) -> T:
        return self.loop.run_until_complete(self._run(work))

    async def _run(self, work: Callable[[Bot, Dispatcher], Awaitable[T]]) -> T:
        if self.bot is None:
            self.bot = create_bot()
        try:
            return await work(self.bot, self.dispatcher)
        finally:
            await sync_to_async(close_old_connections)()

    def close(self) -> None:
        async def shutdown() -> None:
            if self.bot is not None:
                await close_bot(self.bot)
            # The storage and the per-chat locks outlive this loop (one
            # dispatcher per process): drop their connections and locks so
            # the next loop opens its own.
            await self.dispatcher.fsm.close()
            await sync_to_async(connections.close_all)()

        self.loop.run_until_complete(shutdown())
        self.loop.close()


_runtime: BotRuntime | None = None
_runtime_pid: int | None = None


def runtime() -> BotRuntime:
    """This process's runtime (a forked child builds its own)."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        _runtime, _runtime_pid = BotRuntime(), os.getpid()
    return _runtime


def runtime_reset() -> None:
    """Close and forget the runtime (tests, settings changes)."""
    global _runtime
    if _runtime is not None and _runtime_pid == os.getpid():
        _runtime.close()
    _runtime = None


def bot_run(work: Callable[[Bot, Dispatcher], Awaitable[T]]) -> T:
    return runtime().run(work)
