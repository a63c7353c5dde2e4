"""The emulator's records: the bot, users, messages, files, webhook, call log."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BotInfo:
    id: int
    username: str
    first_name: str
    token: str

    def user_dict(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


@dataclass
class SimUser:
    """A simulated Telegram user; their private chat with the bot has the same id."""

    id: int
    first_name: str = "Test"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_premium: bool = False

    def user_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                data[key] = value
        if self.is_premium:
            data["is_premium"] = True
        return data

    def private_chat(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class StoredMessage:
    """One message in a chat as the Bot API returns it (`data`), plus bookkeeping."""

    data: dict[str, Any]
    outgoing: bool  # sent by the bot
    seq: int = 0  # bumped on every change; the chat page polls by it
    deleted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # versions before each edit
    stored_at: float = field(default_factory=time.time)  # wall clock; `date` has whole seconds only

    @property
    def message_id(self) -> int:
        return int(self.data["message_id"])

    @property
    def chat_id(self) -> int:
        return int(self.data["chat"]["id"])

    @property
    def text(self) -> str | None:
        return self.data.get("text")

    @property
    def caption(self) -> str | None:
        return self.data.get("caption")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.data.get("reply_markup")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline keyboard buttons, row by row, flattened."""
        markup = self.reply_markup or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [button["callback_data"] for button in self.buttons if "callback_data" in button]

    @property
    def kind(self) -> str:
        """What the message carries: text, photo, document, video, invoice, ..."""
        for key in ("text", "photo", "document", "video", "sticker", "voice", "invoice", "successful_payment"):
            if key in self.data:
                return key
        return "other"

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    mime_type: str | None = None
    file_name: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)

    def file_dict(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }


@dataclass
class WebhookConfig:
    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class ApiCall:
    """One Bot API call as the emulator saw it, for test assertions."""

    method: str
    params: dict[str, Any]
    time: float
    status: int = 200
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class CallbackQuery:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: dict[str, Any] | None = None


@dataclass
class PreCheckoutQuery:
    id: str
    user_id: int
    chat_id: int
    currency: str
    total_amount: int
    invoice_payload: str
    created: float
    complete_on_ok: bool = False
    answer: dict[str, Any] | None = None


@dataclass
class Notice:
    """Something the chat page shows once: a callback answer's toast or alert."""

    seq: int
    chat_id: int
    text: str
    alert: bool = False
