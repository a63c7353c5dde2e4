"""Telegram Bot API: webhook management and ops notifications.

Docs: https://core.telegram.org/bots/api (setWebhook, getWebhookInfo,
sendMessage). The token sits in every path, so calls are labelled by method
name only and errors never echo a URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployctl.http import HttpClient

TELEGRAM_API_URL = "https://api.telegram.org"
MESSAGE_LIMIT = 4096


@dataclass(frozen=True)
class WebhookInfo:
    url: str
    pending_update_count: int
    last_error_date: int | None
    last_error_message: str | None
    max_connections: int | None
    allowed_updates: list[str] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pending_update_count": self.pending_update_count,
            "last_error_date": self.last_error_date,
            "last_error_message": self.last_error_message,
            "max_connections": self.max_connections,
            "allowed_updates": self.allowed_updates,
        }


class TelegramClient:
    """One bot's Bot API calls."""

    def __init__(self, http: HttpClient, token: str) -> None:
        self.http = http
        self._token = token

    def _call(self, method: str, payload: dict[str, Any] | None = None) -> Any:
        response = self.http.request("POST", f"/bot{self._token}/{method}", label=method, json=payload or {})
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("ok"):
            description = body.get("description") if isinstance(body, dict) else None
            detail = f"HTTP {response.status_code}" + (f" ({description})" if description else "")
            raise self.http.error(method, detail, response.status_code)
        return body.get("result")

    def get_webhook_info(self) -> WebhookInfo:
        result = self._call("getWebhookInfo")
        return WebhookInfo(
            url=str(result.get("url", "")),
            pending_update_count=int(result.get("pending_update_count", 0)),
            last_error_date=result.get("last_error_date"),
            last_error_message=result.get("last_error_message"),
            max_connections=result.get("max_connections"),
            allowed_updates=result.get("allowed_updates"),
        )

    def set_webhook(self, *, url: str, secret_token: str, allowed_updates: list[str], max_connections: int) -> None:
        """Set the webhook; pending updates are always kept (no `drop_pending_updates`)."""
        self._call(
            "setWebhook",
            {
                "url": url,
                "secret_token": secret_token,
                "allowed_updates": allowed_updates,
                "max_connections": max_connections,
            },
        )

    def send_message(self, chat_id: str, text: str) -> None:
        if len(text) > MESSAGE_LIMIT:
            text = text[: MESSAGE_LIMIT - 1] + "…"
        self._call("sendMessage", {"chat_id": chat_id, "text": text, "disable_web_page_preview": True})
