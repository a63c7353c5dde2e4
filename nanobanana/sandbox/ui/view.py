"""What the chat page needs to draw a message, flattened from the Bot API shape."""

from __future__ import annotations

from typing import Any

from nanobanana.sandbox.core import TelegramCore
from nanobanana.sandbox.state import StoredMessage


def message_view(fake: TelegramCore, message: StoredMessage) -> dict[str, Any]:
    data = message.data
    view: dict[str, Any] = {
        "id": message.message_id,
        "seq": message.seq,
        "outgoing": message.outgoing,
        "deleted": message.deleted,
        "date": data.get("date", 0),
        "edited": "edit_date" in data,
    }
    if message.deleted:
        return view
    for key in ("text", "entities", "caption", "caption_entities", "media_group_id"):
        if key in data:
            view[key] = data[key]
    if "photo" in data:
        largest = data["photo"][-1]
        view["photo"] = {"file_id": largest["file_id"], "width": largest["width"], "height": largest["height"]}
    if "document" in data:
        view["document"] = _document(fake, data["document"])
    if "video" in data:
        video = data["video"]
        view["video"] = {"file_id": video["file_id"], "mime_type": video.get("mime_type") or "video/mp4"}
    if "animation" in data:
        view["video"] = {"file_id": data["animation"]["file_id"], "mime_type": "video/mp4", "loop": True}
    if "sticker" in data:
        view["sticker"] = {"emoji": data["sticker"].get("emoji", "")}
    if "voice" in data:
        view["voice"] = {"duration": data["voice"].get("duration", 0)}
    if "invoice" in data:
        view["invoice"] = data["invoice"]
    if "successful_payment" in data:
        payment = data["successful_payment"]
        view["payment"] = {"currency": payment["currency"], "total_amount": payment["total_amount"]}
    markup = data.get("reply_markup") or {}
    if "inline_keyboard" in markup:
        view["buttons"] = [
            [{key: button[key] for key in ("text", "callback_data", "url", "pay") if key in button} for button in row]
            for row in markup["inline_keyboard"]
        ]
    if "keyboard" in markup:
        view["keyboard"] = [[_button_text(button) for button in row] for row in markup["keyboard"]]
    if markup.get("remove_keyboard"):
        view["remove_keyboard"] = True
    reply = data.get("reply_to_message")
    if isinstance(reply, dict):
        view["reply_to"] = {
            "id": reply.get("message_id"),
            "text": reply.get("text") or reply.get("caption") or "",
        }
    return view


def _document(fake: TelegramCore, document: dict[str, Any]) -> dict[str, Any]:
    stored = fake.files.get(document["file_id"])
    mime = document.get("mime_type") or (stored.mime_type if stored else None) or "application/octet-stream"
    return {
        "file_id": document["file_id"],
        "file_name": document.get("file_name") or "file",
        "size": document.get("file_size", 0),
        "mime_type": mime,
        "is_image": mime.startswith("image/"),
    }


def _button_text(button: Any) -> str:
    return str(button.get("text", "")) if isinstance(button, dict) else str(button)
