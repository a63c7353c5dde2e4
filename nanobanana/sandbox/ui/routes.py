"""The chat page and the small JSON API it uses, all relative to where the app is mounted."""

from __future__ import annotations

import contextlib
import html
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nanobanana.sandbox.errors import ApiError
from nanobanana.sandbox.fake import FakeTelegram
from nanobanana.sandbox.media import image_mime
from nanobanana.sandbox.params import parse_body
from nanobanana.sandbox.state import SimUser
from nanobanana.sandbox.ui.view import message_view

HERE = Path(__file__).parent
UI_USER = SimUser(id=100200300, first_name="Sandbox", last_name="User", username="sandbox_user", language_code="ru")
UPLOAD_LIMIT = 60 * 1024 * 1024
LONG_POLL_SECONDS = 20.0


def page_html(base: str, title: str) -> str:
    """The page with its CSS and JS inlined and `<base>` set to the mount point."""
    page = (HERE / "page.html").read_text(encoding="utf-8")
    return (
        page.replace("{{BASE}}", html.escape(base, quote=True))
        .replace("{{TITLE}}", html.escape(title))
        .replace("/*{{CSS}}*/", (HERE / "page.css").read_text(encoding="utf-8"))
        .replace("/*{{JS}}*/", (HERE / "page.js").read_text(encoding="utf-8"))
    )


def ui_routes(fake: FakeTelegram, user: SimUser | None = None) -> list[BaseRoute]:
    """Routes of the chat page for one simulated user (the person at the browser)."""
    person = fake.user(**_fields(user or UI_USER))

    async def page(request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        return HTMLResponse(page_html(base, fake.bot.first_name), headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return JSONResponse(
            {
                "bot": {"name": fake.bot.first_name, "username": fake.bot.username},
                "user": person.user_dict(),
                "seq": fake.seq,
            }
        )

    async def events(request: Request) -> Response:
        after = _int(request.query_params.get("after"), 0)
        wait = min(float(_int(request.query_params.get("wait"), 0)), LONG_POLL_SECONDS)
        if wait and fake.seq <= after:
            with contextlib.suppress(TimeoutError):
                await fake.wait_for(lambda: fake.seq > after or None, timeout=wait, interval=wait)
        return JSONResponse(_events(fake, person.id, after))

    async def send(request: Request) -> Response:
        text = str((await _json(request)).get("text", "")).strip()
        if not text:
            return _refuse("empty message")
        await fake.send_text(person, text[:4096])
        return JSONResponse({"ok": True})

    async def press(request: Request) -> Response:
        body = await _json(request)
        try:
            await fake.press_button(person, int(body.get("message_id", 0)), str(body.get("data", "")))
        except (LookupError, ValueError) as error:
            return _refuse(str(error))
        return JSONResponse({"ok": True})

    async def pay(request: Request) -> Response:
        try:
            await fake.pay_invoice(person, int((await _json(request)).get("message_id", 0)))
        except (LookupError, ValueError) as error:
            return _refuse(str(error))
        return JSONResponse({"ok": True})

    async def upload(request: Request) -> Response:
        try:
            body = await request.body()
            if len(body) > UPLOAD_LIMIT:
                return _refuse("file too large for the sandbox")
            values, files = parse_body(request.headers.get("content-type", ""), body)
        except ApiError as error:
            return _refuse(error.description)
        caption = str(values.get("caption") or "").strip() or None
        uploads = [files[name] for name in sorted(files)]
        images = [item for item in uploads if image_mime(item.content)]
        if not uploads:
            return _refuse("no file")
        if len(images) == len(uploads) and len(images) > 1:
            await fake.send_album(person, [item.content for item in images[:10]], caption)
        elif len(images) == len(uploads):
            await fake.send_photo(person, images[0].content, caption, filename=images[0].filename)
        else:
            for item in uploads:
                await fake.send_document(person, item, caption)
        return JSONResponse({"ok": True})

    async def language(request: Request) -> Response:
        code = str((await _json(request)).get("language_code", ""))
        if code not in ("ru", "en"):
            return _refuse("language must be ru or en")
        fake.user(person.id, language_code=code)
        fake.changed()
        return JSONResponse({"ok": True, "language_code": code})

    async def reset(request: Request) -> Response:
        fake.reset_chat(person.id)
        return JSONResponse({"ok": True})

    async def file(request: Request) -> Response:
        stored = fake.files.get(request.path_params["file_id"])
        if stored is None:
            return Response(status_code=404)
        headers = {"Cache-Control": "private, max-age=3600"}
        if request.query_params.get("download"):
            name = (stored.file_name or stored.file_path.rsplit("/", 1)[-1]).replace('"', "")
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        media_type = stored.mime_type or "application/octet-stream"
        return Response(stored.content, media_type=media_type, headers=headers)

    return [
        Route("/", page, methods=["GET"]),
        Route("/ui/api/state", state, methods=["GET"]),
        Route("/ui/api/events", events, methods=["GET"]),
        Route("/ui/api/send", send, methods=["POST"]),
        Route("/ui/api/press", press, methods=["POST"]),
        Route("/ui/api/pay", pay, methods=["POST"]),
        Route("/ui/api/upload", upload, methods=["POST"]),
        Route("/ui/api/language", language, methods=["POST"]),
        Route("/ui/api/reset", reset, methods=["POST"]),
        Route("/ui/files/{file_id}", file, methods=["GET"]),
    ]


def _events(fake: FakeTelegram, chat_id: int, after: int) -> dict[str, Any]:
    with fake.lock:
        reset = fake.chat_resets.get(chat_id, 0) > after
        since = 0 if reset else after
        changed = [m for m in fake.history(chat_id) if m.seq > since and not (since == 0 and m.deleted)]
        hook = fake.webhook
        return {
            "seq": fake.seq,
            "reset": reset,
            "messages": [message_view(fake, message) for message in changed],
            "notices": [
                {"text": n.text, "alert": n.alert} for n in fake.notices if n.chat_id == chat_id and n.seq > after
            ],
            "action": fake.chat_action(chat_id),
            "language_code": fake.users[chat_id].language_code,
            "status": {
                "pending": fake.pending_update_count,
                "mode": "webhook" if hook.url else "polling",
                "last_error": hook.last_error_message,
                "last_poll": fake.last_poll_time,
                "now": fake.wall_clock(),
            },
        }


def _fields(user: SimUser) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
        "language_code": user.language_code,
    }


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _refuse(reason: str) -> Response:
    return JSONResponse({"ok": False, "error": reason}, status_code=400)
