"""Small helpers shared by handlers."""

from __future__ import annotations

from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from asgiref.sync import sync_to_async


async def run_sync(function: Any, /, **kwargs: Any) -> Any:
    """Call a (database) service from a handler, on Django's sync thread."""
    return await sync_to_async(function)(**kwargs)


async def show(callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace the tapped message's text and buttons; send anew if it is gone."""
    message = callback.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as error:
            if "not modified" not in error.message:
                await message.answer(text, reply_markup=markup)
        return
    if callback.from_user and callback.bot:
        await callback.bot.send_message(callback.from_user.id, text, reply_markup=markup)


def toast(answer: CallbackAnswer, text: str, *, alert: bool = False) -> None:
    """Say something in the callback's answer.

    `CallbackAnswerMiddleware` answers every callback query once, after the
    handler; calling `callback.answer()` as well would answer twice, and
    Telegram refuses the second one."""
    answer.text = text
    answer.show_alert = alert
