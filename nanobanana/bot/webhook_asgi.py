"""The webhook's fast path: a plain ASGI endpoint in front of Django that
stores concurrent updates together.

Under ASGI, Django runs every request through its middleware stack (sessions,
CSRF, auth, messages: each a hop between the event loop and a thread) and
each request in a thread of its own. The webhook needs none of that: this
endpoint checks the secret and the size cap, parses the body on the event
loop, and hands the update to an `InboxBatcher`.

Group commit: the batcher collects the updates of the requests in flight and
stores them with one INSERT (one transaction, one commit, one WAL flush) on a
writer thread; every request of the batch is answered as soon as it is
committed, and a thread of its own queues the new updates' tasks, many
batches' in one broker round trip. Before, each update was a transaction, a commit, a pool check and
a broker round trip of its own, each a blocking call after which its thread
waited for the GIL behind the busy event loop. See
docs/decisions/005-webhook-group-commit.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, DataError, close_old_connections, connections

from nanobanana.bot.inbox import IncomingUpdate, inbox_insert_many, inbox_queue
from nanobanana.bot.views import (
    SECRET_HEADER,
    STORAGE_UNAVAILABLE,
    ParsedUpdate,
    webhook_parse,
    webhook_precheck,
    webhook_precheckout,
    webhook_reply,
)

logger = logging.getLogger(__name__)
_SECRET = SECRET_HEADER.lower().encode()
T = TypeVar("T")


def _with_connection(work: Callable[[], T]) -> T:
    # The request/response cycle Django would run around a view: drop
    # connections that are broken or past their age (with the pool: give the
    # connection back), before and after.
    close_old_connections()
    try:
        return work()
    finally:
        close_old_connections()


class InboxBatcher:
    """Stores updates from concurrent requests together.

    `store()` queues an update and waits for its batch. A batch starts when
    a writer is free: at once if `max_wait` is 0, else after `max_wait`
    seconds or as soon as `max_size` updates wait. While `writers` batches are
    being written, new updates wait and go together in the next one, so the
    batch grows with the load and costs nothing extra when there is none.

    A batch is all or nothing: if the database fails, every update of it gets
    the error (the webhook answers 503 and Telegram redelivers them). If the
    database refuses the data (`DataError`, which `webhook_parse` should make
    impossible), each update of the batch is tried alone, so one bad update
    cannot fail its neighbours on every redelivery."""

    def __init__(
        self,
        *,
        executor: Callable[[], ThreadPoolExecutor],
        queue_later: Callable[[list[int]], None],
        max_size: int,
        max_wait: float,
        writers: int,
    ) -> None:
        if max_size < 1 or writers < 1 or max_wait < 0:
            raise ValueError("max_size and writers must be positive, max_wait not negative")
        self._executor = executor
        self._queue_later = queue_later
        self.max_size = max_size
        self.max_wait = max_wait
        self.writers = writers
        self._waiting: list[tuple[IncomingUpdate, asyncio.Future[bool]]] = []
        self._writing = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Counters, for tests and for a look with a debugger; never reset.
        self.batches = 0
        self.updates = 0

    async def store(self, update: IncomingUpdate) -> bool:
        """Store `update` with the others waiting now. True if it was stored
        by this call, False if it was already in the inbox (or came twice in
        this batch). Raises `DatabaseError` when it could not be stored."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((update, future))
        if self._writing < self.writers:
            if self.max_wait == 0 or len(self._waiting) >= self.max_size:
                self._start_batches()
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.max_wait, self._start_batches)
        # A request cancelled here (the server stopping) cancels only its own
        # future: the batch is written for the others all the same.
        return await future

    def _start_batches(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting and self._writing < self.writers:
            batch, self._waiting = self._waiting[: self.max_size], self._waiting[self.max_size :]
            self._writing += 1
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: list[tuple[IncomingUpdate, asyncio.Future[bool]]]) -> None:
        try:
            await self._resolve(batch)
        finally:
            self._writing -= 1
            if self._waiting:
                self._start_batches()

    async def _resolve(self, batch: list[tuple[IncomingUpdate, asyncio.Future[bool]]]) -> None:
        loop = asyncio.get_running_loop()

        def answer(stored: frozenset[int]) -> None:  # on the writer thread, right after the commit
            loop.call_soon_threadsafe(_answer_batch, batch, stored)

        self.batches += 1
        self.updates += len(batch)
        try:
            await loop.run_in_executor(
                self._executor(), _write_batch, [update for update, _ in batch], answer, self._queue_later
            )
        except DataError as error:
            if len(batch) == 1:
                logger.exception("the database refused an update", extra={"update_id": batch[0][0].update_id})
                _fail(batch, error)
                return
            logger.warning("the database refused a batch; storing its updates one by one", extra={"count": len(batch)})
            for item in batch:
                await self._resolve([item])
        except Exception as error:
            logger.exception(
                "inbox unavailable; the batch is answered 503",
                extra={"count": len(batch), "update_ids": [update.update_id for update, _ in batch[:20]]},
            )
            _fail(batch, error)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise


def _write_batch(
    updates: list[IncomingUpdate],
    answer: Callable[[frozenset[int]], None],
    queue_later: Callable[[list[int]], None],
) -> None:
    """On a writer thread: insert the batch (committed on return: autocommit),
    let its requests be answered, and hand the new updates to the queuer.

    The thread keeps its database connection from batch to batch (a pool
    checkout with its health check costs a round trip per batch); after a
    failure the connection is checked, and dropped if broken, so the next
    batch gets a good one."""
    try:
        inserted = inbox_insert_many(updates=updates)
    except DatabaseError:
        close_old_connections()
        raise
    answer(inserted.stored)
    queue_later(inserted.to_queue)


class TaskQueuer:
    """Queues the tasks of stored updates on a thread of its own, after their
    requests were answered, so a writer is free for the next batch as soon as
    it has committed. What waits when the thread gets to it goes in one broker
    round trip (batches coalesce). A broker failure leaves the rows to the
    re-drive sweep (`inbox_queue` logs it); a process that dies first, too."""

    def __init__(self) -> None:
        self._waiting: deque[int] = deque()
        self._executor: ThreadPoolExecutor | None = None

    def add(self, update_ids: list[int]) -> None:
        """Queue `update_ids` soon (any thread)."""
        if not update_ids:
            return
        self._waiting.extend(update_ids)
        if self._executor is None:  # created in the serving process, on first use
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="webhook-queue")
        self._executor.submit(self._queue_waiting)

    def _queue_waiting(self) -> None:
        update_ids: list[int] = []
        while True:
            try:
                update_ids.append(self._waiting.popleft())
            except IndexError:
                break
        inbox_queue(update_ids=update_ids)  # nothing if an earlier run took them all

    def drain(self) -> None:
        """Return once everything added so far has been queued (blocking)."""
        if self._executor is not None:
            self._executor.submit(lambda: None).result()

    def shutdown(self) -> None:
        """Queue what waits, then stop the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _answer_batch(batch: list[tuple[IncomingUpdate, asyncio.Future[bool]]], stored: frozenset[int]) -> None:
    fresh = set(stored)
    for update, future in batch:
        if not future.done():
            future.set_result(update.update_id in fresh)
        fresh.discard(update.update_id)  # the same id twice: only the first one stored it


def _fail(batch: list[tuple[IncomingUpdate, asyncio.Future[bool]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


class WebhookEndpoint:
    """ASGI app for POST `TELEGRAM_WEBHOOK_PATH`. `threads` bounds the
    database work (and so the connections it holds): up to `threads - 1`
    batches at once, and a thread left for pre-checkout queries."""

    def __init__(self, *, threads: int, batch_max_size: int = 100, batch_max_wait: float = 0.0) -> None:
        if threads < 2:
            raise ValueError("the webhook needs two threads at least: one writes, one answers pre-checkout queries")
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self.queuer = TaskQueuer()
        self.batcher = InboxBatcher(
            executor=lambda: self.executor,
            queue_later=self.queuer.add,
            max_size=batch_max_size,
            max_wait=batch_max_wait,
            writers=threads - 1,
        )

    @property
    def executor(self) -> ThreadPoolExecutor:
        # Created on first use, in the serving process (uvicorn forks workers).
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook")
        return self._executor

    def shutdown(self) -> None:
        """Queue the tasks still waiting, close every thread's database
        connections, then the threads."""
        self.queuer.shutdown()
        if self._executor is None:
            return
        barrier = threading.Barrier(self.threads)

        def close() -> None:
            barrier.wait(timeout=10)  # one job per thread
            connections.close_all()

        for future in [self._executor.submit(close) for _ in range(self.threads)]:
            future.result()
        self._executor.shutdown(wait=True)
        self._executor = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "POST":
            await _answer(send, 405, {"ok": False, "error": "method not allowed"}, allow=True)
            return
        headers = dict(scope["headers"])
        refused = webhook_precheck(
            secret=headers.get(_SECRET, b"").decode("latin-1"),
            content_length=headers.get(b"content-length", b"").decode("latin-1") or None,
        )
        if refused is not None:
            await _answer(send, *refused)
            return
        limit = settings.TELEGRAM_WEBHOOK_MAX_BODY_BYTES
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, {"ok": False, "error": "body too large"})
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        parsed = webhook_parse(body=b"".join(chunks))
        if not isinstance(parsed, ParsedUpdate):
            await _answer(send, *parsed)
            return
        await _answer(send, *await self._store(parsed))

    async def _store(self, parsed: ParsedUpdate) -> tuple[int, dict[str, Any]]:
        try:
            reply = None
            if "pre_checkout_query" in parsed.update:
                reply = await self._precheckout(parsed)
            stored = await self.batcher.store(parsed.incoming(handled=reply is not None))
        except DatabaseError:
            # Logged where it failed: once per batch, or for the pre-checkout read below.
            return STORAGE_UNAVAILABLE
        return webhook_reply(stored=stored, reply=reply)

    async def _precheckout(self, parsed: ParsedUpdate) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, _with_connection, lambda: webhook_precheckout(parsed))
        except DatabaseError:
            logger.exception("pre-checkout query not decided: no database", extra={"update_id": parsed.update_id})
            raise


async def _answer(send: Any, status: int, payload: dict[str, Any], *, allow: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def with_webhook(app: Any, *, threads: int, batch_max_size: int = 100, batch_max_wait: float = 0.0) -> Any:
    """`app` with the webhook path served by `WebhookEndpoint`; everything else passes through."""
    endpoint = WebhookEndpoint(threads=threads, batch_max_size=batch_max_size, batch_max_wait=batch_max_wait)
    path = settings.TELEGRAM_WEBHOOK_PATH

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == path:
            await endpoint(scope, receive, send)
        else:
            await app(scope, receive, send)

    application.endpoint = endpoint  # type: ignore[attr-defined]
    return application
