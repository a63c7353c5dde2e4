"""The HTTP face: Bot API routes (`/bot{token}/{method}`, `/file/bot{token}/{path}`) and the chat page."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nanobanana.sandbox.errors import ApiError, entity_too_large
from nanobanana.sandbox.fake import FakeTelegram
from nanobanana.sandbox.media import LOCAL_UPLOAD_LIMIT
from nanobanana.sandbox.params import Params, parse_body

CLOUD_REQUEST_LIMIT = 60 * 1024 * 1024  # a little above the 50 MB upload limit, for the form around it


def create_app(fake: FakeTelegram | None = None, *, ui: bool = True) -> Starlette:
    """A Starlette app serving `fake` (a new one when None) as the Bot API, plus the chat page at `/`.

    Mountable under a prefix: the Bot API base is then `<origin><prefix>` and the page `<prefix>/`.
    The fake is available as `app.state.fake`.
    """
    fake = fake if fake is not None else FakeTelegram()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        fake.bind_loop(asyncio.get_running_loop())
        try:
            yield
        finally:
            await fake.aclose()

    routes: list[BaseRoute] = [
        Route("/bot{token}/{method}", _bot_api(fake), methods=["GET", "POST"]),
        Route("/file/bot{token}/{file_path:path}", _file_download(fake), methods=["GET"]),
    ]
    if ui:
        from nanobanana.sandbox.ui.routes import ui_routes

        routes.extend(ui_routes(fake))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.fake = fake
    return app


def _bot_api(fake: FakeTelegram) -> Any:
    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        method = request.path_params["method"]
        try:
            params = await read_params(request, limit=LOCAL_UPLOAD_LIMIT if fake.local_mode else CLOUD_REQUEST_LIMIT)
        except ApiError as error:
            return JSONResponse(error.body(), status_code=error.status)
        reply = await fake.call_api(method, params, token=token)
        if isinstance(reply.body, bytes):
            return Response(reply.body, status_code=reply.status, media_type="text/html")
        return JSONResponse(reply.body, status_code=reply.status)

    return endpoint


async def read_params(request: Request, *, limit: int) -> Params:
    """Query string plus body (JSON, form or multipart); 413 above `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise entity_too_large()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise entity_too_large()
    values, files = parse_body(request.headers.get("content-type", ""), bytes(body))
    return Params({**dict(request.query_params), **values}, files)


def _file_download(fake: FakeTelegram) -> Any:
    async def endpoint(request: Request) -> Response:
        if request.path_params["token"] != fake.bot.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        path = request.path_params["file_path"]
        stored = next((f for f in list(fake.files.values()) if f.file_path == path), None)
        if stored is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)
        media_type = stored.mime_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(stored.content, media_type=media_type)

    return endpoint
