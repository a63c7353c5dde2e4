"""Answers for everything no other handler took: never silence."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from nanobanana.bot import keyboards
from nanobanana.bot.handlers.common import toast
from nanobanana.bot.texts import Texts

router = Router(name=__name__)


@router.message(F.photo)
async def photo(message: Message, texts: Texts) -> None:
    await message.answer(texts("fallback.photo"), reply_markup=keyboards.back_to_menu(texts))


@router.message(F.text)
async def unknown_text(message: Message, texts: Texts) -> None:
    await message.answer(texts("fallback.unknown"), reply_markup=keyboards.main_menu(texts))


@router.message()
async def unsupported(message: Message, texts: Texts) -> None:
    """Stickers, voice, video notes, documents, locations, ..."""
    await message.answer(texts("fallback.unsupported"), reply_markup=keyboards.back_to_menu(texts))


@router.callback_query()
async def stale_button(callback: CallbackQuery, callback_answer: CallbackAnswer, texts: Texts) -> None:
    toast(callback_answer, texts("create.draft_expired"))
