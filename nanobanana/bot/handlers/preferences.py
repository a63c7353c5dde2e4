"""/settings: the interface language."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from nanobanana.accounts.models import Language, TelegramUser
from nanobanana.accounts.services import user_set_language
from nanobanana.bot import keyboards
from nanobanana.bot.callbacks import LanguageCb, MenuCb
from nanobanana.bot.handlers.common import run_sync, show
from nanobanana.bot.texts import Texts

router = Router(name=__name__)


def _settings_text(texts: Texts) -> str:
    return texts("settings.title", language=Language(texts.language).label)


@router.message(Command("settings"))
async def settings_command(message: Message, texts: Texts) -> None:
    await message.answer(_settings_text(texts), reply_markup=keyboards.settings(texts))


@router.callback_query(MenuCb.filter(F.action == "settings"))
async def settings_button(callback: CallbackQuery, texts: Texts) -> None:
    await show(callback, _settings_text(texts), keyboards.settings(texts))


@router.callback_query(LanguageCb.filter(F.language.in_(Language.values)))
async def language_chosen(callback: CallbackQuery, callback_data: LanguageCb, user: TelegramUser) -> None:
    await run_sync(user_set_language, user=user, language=callback_data.language)
    texts = Texts(callback_data.language)
    await show(callback, f"{texts('settings.changed')}\n\n{texts('menu.title')}", keyboards.main_menu(texts))
