"""Changing sent messages: editMessageText, editMessageCaption, editMessageReplyMarkup, deleteMessage.

https://core.telegram.org/bots/api#updating-messages
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nanobanana.sandbox.errors import bad_request
from nanobanana.sandbox.formatting import check_reply_markup, check_text, format_text
from nanobanana.sandbox.messages import caption_fields
from nanobanana.sandbox.params import Params
from nanobanana.sandbox.registry import api_method
from nanobanana.sandbox.state import StoredMessage

if TYPE_CHECKING:
    from nanobanana.sandbox.core import TelegramCore

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


def _target(fake: TelegramCore, params: Params, missing: str = "message to edit not found") -> StoredMessage:
    if params.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")  # inline mode is not emulated
    chat_id = params.chat_id()
    fake.chat_dict(chat_id)
    message_id = params.integer("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    message = fake.find_message(chat_id, message_id)
    if message is None:
        raise bad_request(missing)
    return message


def _apply(fake: TelegramCore, message: StoredMessage, changes: dict[str, Any], drop: tuple[str, ...]) -> Any:
    """Apply an edit unless it changes nothing; returns the edited Message."""
    if not message.outgoing:
        raise bad_request("message can't be edited")
    new = {**message.data, **changes}
    for key in drop:
        if key not in changes:
            new.pop(key, None)
    compared = ("text", "entities", "caption", "caption_entities", "reply_markup")
    if all(new.get(key) == message.data.get(key) for key in compared):
        raise bad_request(NOT_MODIFIED)
    fake.admit(message.chat_id)
    with fake.lock:
        message.history.append(message.snapshot())
        new["edit_date"] = int(fake.wall_clock())
        message.data = new
        message.seq = fake.changed()
    return message.snapshot()


@api_method("editMessageText")
async def edit_message_text(fake: TelegramCore, params: Params) -> Any:
    message = _target(fake, params)
    text, entities = format_text(params.text("text") or "", params.text("parse_mode"), params.obj("entities"))
    check_text(text, entities)
    if "text" not in message.data:
        raise bad_request("there is no text in the message to edit")
    changes: dict[str, Any] = {"text": text}
    if entities:
        changes["entities"] = entities
    markup = check_reply_markup(params.obj("reply_markup"))
    if markup is not None:
        changes["reply_markup"] = markup
    return _apply(fake, message, changes, drop=("entities", "reply_markup"))


@api_method("editMessageCaption")
async def edit_message_caption(fake: TelegramCore, params: Params) -> Any:
    message = _target(fake, params)
    if "text" in message.data:
        raise bad_request("there is no caption in the message to edit")
    changes = caption_fields(params)
    markup = check_reply_markup(params.obj("reply_markup"))
    if markup is not None:
        changes["reply_markup"] = markup
    return _apply(fake, message, changes, drop=("caption", "caption_entities", "reply_markup"))


@api_method("editMessageReplyMarkup")
async def edit_message_reply_markup(fake: TelegramCore, params: Params) -> Any:
    message = _target(fake, params)
    markup = check_reply_markup(params.obj("reply_markup"))
    changes = {"reply_markup": markup} if markup is not None else {}
    return _apply(fake, message, changes, drop=("reply_markup",))


@api_method("deleteMessage")
async def delete_message(fake: TelegramCore, params: Params) -> bool:
    message = _target(fake, params, missing="message to delete not found")
    with fake.lock:
        message.deleted = True
        message.seq = fake.changed()
    return True
