"""The webhook's fast path: a plain ASGI endpoint in front of Django.

Under ASGI, Django runs every request through its middleware stack (sessions,
CSRF, auth, messages: each a hop between the event loop and a thread) and
each request in a thread of its own. For the webhook that cost was most of
the time (docs/benchmarks.md: about 300 requests/s with no database work at
all, against 2,400/s for aiogram's own handler). The webhook needs none of
that middleware: this endpoint reads the body with the size cap, and runs
the same contract (`views.webhook_precheck` / `views.webhook_answer`) with
the database work on a fixed pool of threads, so connections are bounded by
the pool, not by the number of requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

from nanobanana.bot.views import SECRET_HEADER, Answer, webhook_answer, webhook_precheck

_SECRET = SECRET_HEADER.lower().encode()


def _store(body: bytes) -> Answer:
    # The request/response cycle Django would run around a view: drop
    # connections that are broken or past their age, before and after.
    close_old_connections()
    try:
        return webhook_answer(body=body)
    finally:
        close_old_connections()


class WebhookEndpoint:
    """ASGI app for POST `TELEGRAM_WEBHOOK_PATH`; `threads` bounds the database work."""

    def __init__(self, *, threads: int) -> None:
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        # Created on first use, in the serving process (uvicorn forks workers).
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook")
        return self._executor

    def shutdown(self) -> None:
        """Close every thread's database connections, then the threads."""
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
        loop = asyncio.get_running_loop()
        status, payload = await loop.run_in_executor(self.executor, _store, b"".join(chunks))
        await _answer(send, status, payload)


async def _answer(send: Any, status: int, payload: dict[str, Any], *, allow: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def with_webhook(app: Any, *, threads: int) -> Any:
    """`app` with the webhook path served by `WebhookEndpoint`; everything else passes through."""
    endpoint = WebhookEndpoint(threads=threads)
    path = settings.TELEGRAM_WEBHOOK_PATH

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == path:
            await endpoint(scope, receive, send)
        else:
            await app(scope, receive, send)

    application.endpoint = endpoint  # type: ignore[attr-defined]
    return application
