"""Serving the emulator on a real loopback port, for tests and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from nanobanana.sandbox.app import create_app
from nanobanana.sandbox.fake import FakeTelegram


def _server(fake: FakeTelegram, host: str, port: int, ui: bool, prefix: str) -> uvicorn.Server:
    app = create_app(fake, ui=ui)
    served = app
    if prefix:
        # A mounted app's lifespan does not run; the wrapper's does the same job.
        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            fake.bind_loop(asyncio.get_running_loop())
            try:
                yield
            finally:
                await fake.aclose()

        served = Starlette(routes=[Mount(prefix, app=app)], lifespan=lifespan)
    config = uvicorn.Config(
        served,
        host=host,
        port=port,
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


def _base_url(server: uvicorn.Server, host: str, prefix: str) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://{host}:{port}{prefix}"


@contextlib.contextmanager
def run_sandbox(
    fake: FakeTelegram | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ui: bool = True,
    prefix: str = "",
    start_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve `fake` in a background thread; yields the Bot API base URL (`TelegramAPIServer.from_base`).

    Port 0 picks a free port. The fake's simulated users and webhook delivery
    run on the server's loop; sync code drives them with `fake.sync`, async
    code awaits them from any loop.
    """
    fake = fake if fake is not None else FakeTelegram()
    server = _server(fake, host, port, ui, prefix)
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    try:
        yield _base_url(server, host, prefix)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.asynccontextmanager
async def serve_sandbox(
    fake: FakeTelegram | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ui: bool = True,
    prefix: str = "",
    start_timeout: float = 10.0,
) -> AsyncIterator[str]:
    """Like `run_sandbox`, but on the current event loop (one loop for the test, server and fake)."""
    fake = fake if fake is not None else FakeTelegram()
    server = _server(fake, host, port, ui, prefix)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
            raise RuntimeError("the sandbox server did not start")
        await asyncio.sleep(0.01)
    try:
        yield _base_url(server, host, prefix)
    finally:
        server.should_exit = True
        await task
