"""Putting the sandbox under a path prefix in front of another ASGI app (the Django web process)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from nanobanana.sandbox.app import create_app
from nanobanana.sandbox.fake import FakeTelegram


def mount_sandbox(app: ASGIApp, fake: FakeTelegram, *, prefix: str = "/sandbox", ui: bool = True) -> ASGIApp:
    """`app` with the sandbox answering under `prefix` (Bot API base `<origin><prefix>`, page `<prefix>/`).

    Answers the lifespan protocol itself (Django's ASGI handler does not):
    startup binds the fake to the server's loop, shutdown stops webhook delivery.
    The inner app must not need lifespan events.
    """
    prefix = "/" + prefix.strip("/")
    sandbox = create_app(fake, ui=ui)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(fake, receive, send)
            return
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path == prefix:
            await _redirect(prefix + "/", send)
            return
        if path.startswith(prefix + "/"):
            inner: dict[str, Any] = dict(scope)
            inner["root_path"] = scope.get("root_path", "") + prefix
            await sandbox(inner, receive, send)
            return
        await app(scope, receive, send)

    return dispatch


async def _lifespan(fake: FakeTelegram, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            fake.bind_loop(asyncio.get_running_loop())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await fake.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _redirect(location: str, send: Send) -> None:
    await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location.encode())]})
    await send({"type": "http.response.body", "body": b""})
