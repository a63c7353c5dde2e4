"""getMe, getFile, commands, chat actions, callback answers, invoices, pre-checkout answers, Stars refunds.

https://core.telegram.org/bots/api#available-methods
https://core.telegram.org/bots/api#payments
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from nanobanana.sandbox.errors import bad_request
from nanobanana.sandbox.media import CLOUD_DOWNLOAD_LIMIT
from nanobanana.sandbox.messages import message_head, reply_fields, stored_result
from nanobanana.sandbox.params import Params
from nanobanana.sandbox.registry import api_method
from nanobanana.sandbox.state import Notice

if TYPE_CHECKING:
    from nanobanana.sandbox.core import TelegramCore

QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
COMMAND = re.compile(r"[a-z0-9_]{1,32}")
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
PRE_CHECKOUT_DEADLINE = 10.0


@api_method("getMe")
async def get_me(fake: TelegramCore, params: Params) -> dict[str, Any]:
    return {
        **fake.bot.user_dict(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@api_method("getFile")
async def get_file(fake: TelegramCore, params: Params) -> dict[str, Any]:
    file_id = params.text("file_id", required=True)
    stored = fake.files.get(file_id or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if not fake.local_mode and stored.size > CLOUD_DOWNLOAD_LIMIT:
        raise bad_request("file is too big")
    return stored.file_dict()


def _commands_key(params: Params) -> str:
    scope = params.obj("scope")
    scope_type = scope.get("type", "default") if isinstance(scope, dict) else "default"
    return f"{scope_type}:{params.text('language_code') or ''}"


@api_method("setMyCommands")
async def set_my_commands(fake: TelegramCore, params: Params) -> bool:
    commands = params.obj("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    for command in commands:
        if not isinstance(command, dict) or not COMMAND.fullmatch(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    with fake.lock:
        fake.commands[_commands_key(params)] = [
            {"command": item["command"], "description": item["description"]} for item in commands
        ]
    return True


@api_method("getMyCommands")
async def get_my_commands(fake: TelegramCore, params: Params) -> list[dict[str, str]]:
    return list(fake.commands.get(_commands_key(params), []))


@api_method("deleteMyCommands")
async def delete_my_commands(fake: TelegramCore, params: Params) -> bool:
    with fake.lock:
        fake.commands.pop(_commands_key(params), None)
    return True


@api_method("sendChatAction")
async def send_chat_action(fake: TelegramCore, params: Params) -> bool:
    chat_id = params.chat_id()
    fake.chat_dict(chat_id)
    action = params.text("action", required=True)
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    if chat_id in fake.blocked_users:
        fake.admit(chat_id)  # raises the 403
    with fake.lock:
        fake.chat_actions[chat_id] = (action, fake.wall_clock())
    return True


@api_method("answerCallbackQuery")
async def answer_callback_query(fake: TelegramCore, params: Params) -> bool:
    query_id = params.text("callback_query_id", required=True) or ""
    text = params.text("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    with fake.lock:
        query = fake.callback_queries.get(query_id)
        if query is None or query.answer is not None:
            raise bad_request(QUERY_INVALID)
        query.answer = {"text": text, "show_alert": params.flag("show_alert"), "url": params.text("url")}
        if text:
            fake.notices.append(
                Notice(seq=fake.seq + 1, chat_id=query.chat_id, text=text, alert=params.flag("show_alert"))
            )
    return True


@api_method("sendInvoice")
async def send_invoice(fake: TelegramCore, params: Params) -> dict[str, Any]:
    chat_id = params.chat_id()
    head = message_head(fake, chat_id)
    title = params.text("title") or ""
    description = params.text("description") or ""
    payload = params.text("payload") or ""
    currency = params.text("currency", required=True) or ""
    if not 1 <= len(title) <= 32:
        raise bad_request("INVOICE_TITLE_INVALID")
    if not 1 <= len(description) <= 255:
        raise bad_request("INVOICE_DESCRIPTION_INVALID")
    if not 1 <= len(payload.encode()) <= 128:
        raise bad_request("INVOICE_PAYLOAD_INVALID")
    prices = params.obj("prices")
    if not isinstance(prices, list) or not prices or not all(_is_price(price) for price in prices):
        raise bad_request("can't parse prices JSON object")
    if currency == "XTR":
        if params.text("provider_token"):
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        if len(prices) != 1:
            raise bad_request("STARS_INVOICE_INVALID: exactly one price item is required")
    elif not params.text("provider_token"):
        raise bad_request("PAYMENT_PROVIDER_INVALID")
    total = sum(int(price["amount"]) for price in prices)
    if total <= 0:
        raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
    invoice = {
        "title": title,
        "description": description,
        "start_parameter": params.text("start_parameter") or "",
        "currency": currency,
        "total_amount": total,
    }
    fields = reply_fields(fake, chat_id, params)
    fake.admit(chat_id)
    result = stored_result(fake, chat_id, {**head, "invoice": invoice, **fields})
    with fake.lock:
        fake.invoices[(chat_id, result["message_id"])] = {**invoice, "payload": payload, "prices": prices}
    return result


def _is_price(price: Any) -> bool:
    return isinstance(price, dict) and isinstance(price.get("label"), str) and str(price.get("amount", "")).isdigit()


@api_method("answerPreCheckoutQuery")
async def answer_pre_checkout_query(fake: TelegramCore, params: Params) -> bool:
    query_id = params.text("pre_checkout_query_id", required=True) or ""
    ok = params.flag("ok")
    error_message = params.text("error_message")
    if not ok and not error_message:
        raise bad_request("error_message is empty")
    with fake.lock:
        query = fake.pre_checkout_queries.get(query_id)
        late = query is not None and fake.clock() - query.created > PRE_CHECKOUT_DEADLINE
        if query is None or query.answer is not None or late:
            raise bad_request(QUERY_INVALID)
        query.answer = {"ok": ok, "error_message": error_message}
        if not ok:
            fake.notices.append(Notice(seq=fake.seq + 1, chat_id=query.chat_id, text=error_message or "", alert=True))
    if ok and query.complete_on_ok:
        await fake.complete_payment(query)
    return True


@api_method("refundStarPayment")
async def refund_star_payment(fake: TelegramCore, params: Params) -> bool:
    """https://core.telegram.org/bots/api#refundstarpayment: the whole charge
    goes back to the user who paid it, once. Telegram's error names for the
    failure cases are used where known (CHARGE_ALREADY_REFUNDED); an unknown
    charge or another user's is CHARGE_NOT_FOUND here."""
    user_id = params.integer("user_id", required=True)
    charge_id = params.text("telegram_payment_charge_id", required=True) or ""
    with fake.lock:
        charge = fake.star_charges.get(charge_id)
        if charge is None or charge["user_id"] != user_id:
            raise bad_request("CHARGE_NOT_FOUND")
        if charge["refunded"]:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        charge["refunded"] = True
    return True
