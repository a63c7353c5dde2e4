"""Sending messages: sendMessage, sendPhoto, sendDocument, sendVideo, sendMediaGroup.

https://core.telegram.org/bots/api#sendmessage
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nanobanana.sandbox.errors import bad_request
from nanobanana.sandbox.formatting import check_caption, check_reply_markup, check_text, format_text
from nanobanana.sandbox.media import MediaKind, media_dict, resolve_input
from nanobanana.sandbox.params import Params
from nanobanana.sandbox.registry import api_method

if TYPE_CHECKING:
    from nanobanana.sandbox.core import TelegramCore


def message_head(fake: TelegramCore, chat_id: int) -> dict[str, Any]:
    """from/chat/date of a message the bot sends; refuses chats the sandbox does not know."""
    return {"from": fake.bot.user_dict(), "chat": fake.chat_dict(chat_id), "date": int(fake.wall_clock())}


def reply_fields(fake: TelegramCore, chat_id: int, params: Params) -> dict[str, Any]:
    """reply_to_message and reply_markup, validated."""
    fields: dict[str, Any] = {}
    reply = params.obj("reply_parameters")
    reply_to = reply.get("message_id") if isinstance(reply, dict) else params.integer("reply_to_message_id")
    if reply_to:
        original = fake.find_message(chat_id, int(reply_to))
        allow_missing = params.flag("allow_sending_without_reply") or (
            isinstance(reply, dict) and reply.get("allow_sending_without_reply")
        )
        if original is not None:
            fields["reply_to_message"] = {k: v for k, v in original.data.items() if k != "reply_to_message"}
        elif not allow_missing:
            raise bad_request("message to be replied not found")
    markup = check_reply_markup(params.obj("reply_markup"))
    if markup is not None:
        fields["reply_markup"] = markup
    return fields


def caption_fields(params: Params, prefix: str = "caption") -> dict[str, Any]:
    caption = params.text(prefix)
    if caption is None:
        return {}
    text, entities = format_text(caption, params.text("parse_mode"), params.obj(f"{prefix}_entities"))
    check_caption(text)
    fields: dict[str, Any] = {"caption": text}
    if entities:
        fields["caption_entities"] = entities
    return fields


def stored_result(fake: TelegramCore, chat_id: int, data: dict[str, Any]) -> dict[str, Any]:
    return fake.store_message(chat_id, data, outgoing=True).snapshot()


@api_method("sendMessage")
async def send_message(fake: TelegramCore, params: Params) -> dict[str, Any]:
    chat_id = params.chat_id()
    head = message_head(fake, chat_id)
    raw = params.text("text")
    text, entities = format_text(raw or "", params.text("parse_mode"), params.obj("entities"))
    check_text(text, entities)
    data = {**head, "text": text}
    if entities:
        data["entities"] = entities
    data.update(reply_fields(fake, chat_id, params))
    fake.admit(chat_id)
    return stored_result(fake, chat_id, data)


async def _send_media(fake: TelegramCore, params: Params, kind: MediaKind) -> dict[str, Any]:
    chat_id = params.chat_id()
    head = message_head(fake, chat_id)
    fields = caption_fields(params)
    fields.update(reply_fields(fake, chat_id, params))
    resolved = resolve_input(fake, params, params.values.get(kind), kind, kind)
    media = media_dict(fake, kind, resolved, params)
    fake.admit(chat_id)
    return stored_result(fake, chat_id, {**head, kind: media, **fields})


@api_method("sendPhoto")
async def send_photo(fake: TelegramCore, params: Params) -> dict[str, Any]:
    return await _send_media(fake, params, "photo")


@api_method("sendDocument")
async def send_document(fake: TelegramCore, params: Params) -> dict[str, Any]:
    return await _send_media(fake, params, "document")


@api_method("sendVideo")
async def send_video(fake: TelegramCore, params: Params) -> dict[str, Any]:
    return await _send_media(fake, params, "video")


@api_method("sendAnimation")
async def send_animation(fake: TelegramCore, params: Params) -> dict[str, Any]:
    return await _send_media(fake, params, "animation")


@api_method("sendMediaGroup")
async def send_media_group(fake: TelegramCore, params: Params) -> list[dict[str, Any]]:
    chat_id = params.chat_id()
    head = message_head(fake, chat_id)
    items = params.obj("media")
    if not isinstance(items, list) or not 2 <= len(items) <= 10:
        raise bad_request("wrong number of messages in the media group: it must contain 2-10 items")
    kinds = {item.get("type") for item in items if isinstance(item, dict)}
    if len(kinds) != 1 and not kinds <= {"photo", "video"}:
        raise bad_request("documents and audio files can't be mixed with other media types in a media group")
    reply = reply_fields(fake, chat_id, params)
    reply.pop("reply_markup", None)  # albums carry no keyboard
    prepared: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "document", "audio"):
            raise bad_request("can't parse InputMedia: media type is invalid")
        item_params = Params(item, params.files)
        kind: MediaKind = item["type"]
        resolved = resolve_input(fake, params, item.get("media"), kind, "media")
        prepared.append({kind: media_dict(fake, kind, resolved, item_params), **caption_fields(item_params)})
    fake.admit(chat_id, len(prepared))
    group_id = fake.new_id("1300")
    return [
        stored_result(fake, chat_id, {**head, "media_group_id": group_id, **fields, **reply}) for fields in prepared
    ]
