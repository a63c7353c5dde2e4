"""/history: the last generations, with repeat buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from nanobanana.accounts.models import TelegramUser
from nanobanana.bot import keyboards
from nanobanana.bot.callbacks import MenuCb
from nanobanana.bot.handlers.common import run_sync, show
from nanobanana.bot.presenters import escape, local_time, shorten
from nanobanana.bot.texts import Texts
from nanobanana.generation.selectors import requests_recent

router = Router(name=__name__)
HISTORY_SIZE = 10
REPEAT_BUTTONS = 6


async def _history(user: TelegramUser, texts: Texts) -> tuple[str, list[int]]:
    requests = await run_sync(requests_recent, user=user, limit=HISTORY_SIZE)
    if not requests:
        return texts("history.empty"), []
    lines = [texts("history.title")]
    lines.extend(
        texts(
            "history.line",
            id=request.pk,
            model=escape(request.model.title),
            status=texts(f"state.{request.status}"),
            price=request.price,
            date=local_time(request.created_at),
            prompt=escape(shorten(request.prompt, 80)),
        )
        for request in requests
    )
    return "\n\n".join(lines), [request.pk for request in requests[:REPEAT_BUTTONS]]


@router.message(Command("history"))
async def history_command(message: Message, user: TelegramUser, texts: Texts) -> None:
    text, ids = await _history(user, texts)
    await message.answer(text, reply_markup=keyboards.history(texts, ids))


@router.callback_query(MenuCb.filter(F.action == "history"))
async def history_button(callback: CallbackQuery, user: TelegramUser, texts: Texts) -> None:
    text, ids = await _history(user, texts)
    await show(callback, text, keyboards.history(texts, ids))
