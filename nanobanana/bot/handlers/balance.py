"""Balance with prices; top-ups, promo codes and bonuses live in `payments`."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot import keyboards
from nanobanana.bot.callbacks import MenuCb
from nanobanana.bot.handlers.common import run_sync, show
from nanobanana.bot.presenters import balance_text
from nanobanana.bot.texts import Texts
from nanobanana.catalog.selectors import models_offered

router = Router(name=__name__)


async def _balance(user: TelegramUser, texts: Texts) -> str:
    wallet = await run_sync(wallet_balance, user=user)
    models = await run_sync(models_offered)
    return balance_text(texts, wallet, models)


@router.message(Command("balance"))
async def balance_command(message: Message, user: TelegramUser, texts: Texts) -> None:
    await message.answer(await _balance(user, texts), reply_markup=keyboards.balance(texts))


@router.callback_query(MenuCb.filter(F.action == "balance"))
async def balance_button(callback: CallbackQuery, state: FSMContext, user: TelegramUser, texts: Texts) -> None:
    await state.clear()  # also the way out of the promo-code prompt
    await show(callback, await _balance(user, texts), keyboards.balance(texts))
