"""Fake Telegram Bot API (https://core.telegram.org/bots/api): getWebhookInfo,
setWebhook and sendMessage for two bots (the app's and the ops notifier).
An unknown token gets 401 {"ok": false}, as Telegram answers."""

from __future__ import annotations

import re
from typing import Any

from .server import Request, Response
from .world import World

BOT_TOKEN = "123456:TEST-app-bot-token"
NOTIFY_TOKEN = "654321:TEST-notify-bot-token"
NOTIFY_CHAT_ID = "-1001"
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")


class FakeTelegram:
    def __init__(self, world: World) -> None:
        self.world = world
        self.sent: list[dict[str, Any]] = []
        self.set_webhook_calls: list[dict[str, Any]] = []
        self.rate_limited = 0

    def __call__(self, request: Request) -> Response:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path)
        if not match:
            return Response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, method = match.groups()
        if token not in {BOT_TOKEN, NOTIFY_TOKEN}:
            return Response(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return Response(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 2",
                    "parameters": {"retry_after": 2},
                },
            )
        payload = request.json() or {}
        if method == "sendMessage" and token == NOTIFY_TOKEN:
            self.sent.append(payload)
            return Response(200, {"ok": True, "result": {"message_id": len(self.sent)}})
        if method == "getWebhookInfo" and token == BOT_TOKEN:
            hook = self.world.webhook
            result = {
                "url": hook.url,
                "has_custom_certificate": False,
                "pending_update_count": self.world.webhook_pending(),
                "max_connections": hook.max_connections,
                "allowed_updates": hook.allowed_updates,
            }
            if hook.last_error_date:
                result["last_error_date"] = hook.last_error_date
                result["last_error_message"] = hook.last_error_message
            return Response(200, {"ok": True, "result": result})
        if method == "setWebhook" and token == BOT_TOKEN:
            return self._set_webhook(payload)
        return Response(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {method} not faked"})

    def _set_webhook(self, payload: dict[str, Any]) -> Response:
        self.set_webhook_calls.append(payload)
        if not str(payload.get("url", "")).startswith("https://"):
            return Response(
                400,
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: bad webhook: HTTPS url must be provided for webhook",
                },
            )
        if not SECRET_PATTERN.fullmatch(str(payload.get("secret_token", ""))):
            return Response(
                400,
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: secret token contains unallowed characters",
                },
            )
        hook = self.world.webhook
        already = hook.url == payload["url"]
        hook.url = payload["url"]
        hook.secret_token = payload["secret_token"]
        hook.allowed_updates = payload.get("allowed_updates", hook.allowed_updates)
        hook.max_connections = payload.get("max_connections", hook.max_connections)
        if payload.get("drop_pending_updates"):
            hook.pending = 0
        return Response(
            200, {"ok": True, "result": True, "description": "Webhook is already set" if already else "Webhook was set"}
        )
