"""Helpers for tests that use the emulator: a controllable clock and a webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class ManualClock:
    """A clock tests move by hand: `FakeTelegram(clock=clock)`, then `clock.advance(1.0)`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ReceivedUpdate:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class WebhookRecorder:
    """A loopback webhook that records what it gets; answers with `statuses` in turn, then `status`.

    `reply` (a dict) is sent as the JSON body of 2xx answers, e.g. a method call for Telegram to perform.
    """

    status: int = 200
    statuses: list[int] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    received: list[ReceivedUpdate] = field(default_factory=list)
    attempts: int = 0
    url: str = ""

    async def _endpoint(self, request: Request) -> Response:
        self.attempts += 1
        status = self.statuses.pop(0) if self.statuses else self.status
        if 200 <= status < 300:
            self.received.append(ReceivedUpdate(body=await request.json(), headers=dict(request.headers)))
            if self.reply is not None:
                return JSONResponse(self.reply, status_code=status)
        return Response(status_code=status)

    @property
    def update_ids(self) -> list[int]:
        return [int(item.body["update_id"]) for item in self.received]

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1") -> AsyncIterator[WebhookRecorder]:
        """Listen on a free loopback port on the current loop; `self.url` is set while serving."""
        app = Starlette(routes=[Route("/webhook", self._endpoint, methods=["POST"])])
        config = uvicorn.Config(app, host=host, port=0, loop="asyncio", lifespan="off", log_level="warning")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the webhook recorder did not start")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{host}:{port}/webhook"
        try:
            yield self
        finally:
            server.should_exit = True
            await task
