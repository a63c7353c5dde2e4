"""/start, /help and the main menu."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from django.conf import settings

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.bonuses import ReferralOutcome, referral_attach
from nanobanana.billing.selectors import wallet_balance
from nanobanana.billing.services import bonus_welcome_grant
from nanobanana.bot import keyboards
from nanobanana.bot.callbacks import MenuCb
from nanobanana.bot.handlers.common import run_sync, show
from nanobanana.bot.presenters import escape
from nanobanana.bot.texts import Texts

router = Router(name=__name__)


REFERRAL_PREFIX = "ref_"


@router.message(CommandStart())
async def start(message: Message, command: CommandObject, state: FSMContext, user: TelegramUser, texts: Texts) -> None:
    await state.clear()
    referred = False
    if command.args and command.args.startswith(REFERRAL_PREFIX):
        outcome = await run_sync(referral_attach, referred=user, code=command.args.removeprefix(REFERRAL_PREFIX))
        referred = outcome == ReferralOutcome.ATTACHED
    granted = await run_sync(bonus_welcome_grant, user=user)
    name = escape(user.first_name or user.username or "")
    if granted:
        greeting = texts("start.welcome", name=name, bonus=settings.WELCOME_BONUS_TOKENS)
    else:
        wallet = await run_sync(wallet_balance, user=user)
        greeting = texts("start.back", name=name, available=wallet.available)
    if referred:
        greeting += "\n\n" + texts("referral.attached")
    await message.answer(f"{greeting}\n\n{texts('menu.title')}", reply_markup=keyboards.main_menu(texts))


@router.message(Command("help"))
async def help_command(message: Message, texts: Texts) -> None:
    await message.answer(
        texts("help.text", limit=settings.PROMPT_MAX_LENGTH), reply_markup=keyboards.back_to_menu(texts)
    )


@router.callback_query(MenuCb.filter(F.action == "help"))
async def help_button(callback: CallbackQuery, texts: Texts) -> None:
    await show(callback, texts("help.text", limit=settings.PROMPT_MAX_LENGTH), keyboards.back_to_menu(texts))


@router.callback_query(MenuCb.filter(F.action == "home"))
async def home(callback: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await state.clear()
    await show(callback, texts("menu.title"), keyboards.main_menu(texts))
