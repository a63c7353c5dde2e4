"""Top-up menu, Telegram Stars checkout, lava.top card links, promo codes,
the daily bonus and invite links.

Handlers only parse, call a service (`nanobanana.payments`, `nanobanana.billing`)
and format. A pre-checkout query is normally answered by the webhook itself
(`nanobanana.bot.precheckout`); the handler here answers when updates
arrive by long polling."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery
from aiogram.utils.callback_answer import CallbackAnswer

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.bonuses import daily_bonus_claim, referral_code_get_or_create
from nanobanana.billing.promo import PromoRejected, promo_redeem
from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot import keyboards
from nanobanana.bot.callbacks import BuyCb, MenuCb
from nanobanana.bot.handlers.common import run_sync, show, toast
from nanobanana.bot.presenters import escape, zone_name
from nanobanana.bot.texts import Texts
from nanobanana.core.errors import AppError
from nanobanana.payments import stars
from nanobanana.payments.models import TokenPackage
from nanobanana.payments.selectors import card_payments_enabled, package_get, packages_offered

router = Router(name=__name__)
logger = logging.getLogger(__name__)


class PromoInput(StatesGroup):
    code = State()


# --- top-up menu ------------------------------------------------------------------


def _topup_text(texts: Texts, packages: Sequence[TokenPackage], *, card: bool) -> str:
    if not packages:
        return texts("topup.empty")
    lines = [texts("topup.title")]
    for package in packages:
        if card and package.sold_by_card:
            lines.append(
                texts(
                    "topup.line_card",
                    tokens=package.tokens,
                    stars=package.price_stars,
                    rub=keyboards.rub(package.price_rub),
                )
            )
        else:
            lines.append(texts("topup.line", tokens=package.tokens, stars=package.price_stars))
    return "\n".join(lines)


@router.callback_query(MenuCb.filter(F.action == "topup"))
async def topup(callback: CallbackQuery, texts: Texts) -> None:
    packages = await run_sync(packages_offered)
    card = card_payments_enabled()
    await show(callback, _topup_text(texts, packages, card=card), keyboards.topup(texts, packages, card=card))


@router.message(Command("topup"))
async def topup_command(message: Message, texts: Texts) -> None:
    packages = await run_sync(packages_offered)
    card = card_payments_enabled()
    await message.answer(
        _topup_text(texts, packages, card=card), reply_markup=keyboards.topup(texts, packages, card=card)
    )


# --- Telegram Stars -------------------------------------------------------------------


@router.callback_query(BuyCb.filter(F.method == "stars"))
async def buy_stars(
    callback: CallbackQuery, callback_data: BuyCb, callback_answer: CallbackAnswer, user: TelegramUser, texts: Texts
) -> None:
    package = await run_sync(package_get, package_id=callback_data.package_id)
    if package is None or callback.bot is None:
        toast(callback_answer, texts("payment.refuse_package"), alert=True)
        return
    label = texts("payment.invoice_title", tokens=package.tokens)
    await callback.bot.send_invoice(
        chat_id=user.telegram_id,
        title=label,
        description=texts("payment.invoice_description", tokens=package.tokens),
        payload=stars.stars_invoice_payload(package=package, telegram_id=user.telegram_id),
        currency=stars.CURRENCY,
        prices=[LabeledPrice(label=label, amount=package.price_stars)],
    )


@router.pre_checkout_query()
async def pre_checkout(query: PreCheckoutQuery, texts: Texts) -> None:
    """Long-polling path only: with a webhook the web process answered already
    (see nanobanana/bot/precheckout.py) and this update never reaches us."""
    refusal = await run_sync(
        stars.stars_precheckout_check,
        telegram_id=query.from_user.id,
        payload=query.invoice_payload,
        currency=query.currency,
        total_amount=query.total_amount,
    )
    if refusal is None:
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=texts(refusal))


@router.message(F.successful_payment)
async def successful_payment(message: Message, user: TelegramUser, texts: Texts) -> None:
    payment = message.successful_payment
    assert payment is not None
    outcome = await run_sync(
        stars.stars_payment_record,
        user=user,
        payload=payment.invoice_payload,
        currency=payment.currency,
        total_amount=payment.total_amount,
        charge_id=payment.telegram_payment_charge_id,
    )
    if outcome.payment is None:
        await message.answer(texts("payment.quarantined", id=escape(payment.telegram_payment_charge_id)))
        return
    if not outcome.credited:
        return  # a replay: the receipt was sent the first time
    wallet = await run_sync(wallet_balance, user=user)
    await message.answer(
        texts(
            "payment.receipt_stars",
            amount=payment.total_amount,
            tokens=outcome.payment.tokens,
            available=wallet.available,
            charge_id=escape(payment.telegram_payment_charge_id),
        ),
        reply_markup=keyboards.main_menu(texts),
    )


# --- card (lava.top) -------------------------------------------------------------------


@router.callback_query(BuyCb.filter(F.method == "card"))
async def buy_card(
    callback: CallbackQuery, callback_data: BuyCb, callback_answer: CallbackAnswer, user: TelegramUser, texts: Texts
) -> None:
    from nanobanana.payments.lava import lava_invoice_create

    package = await run_sync(package_get, package_id=callback_data.package_id)
    if package is None or not package.sold_by_card or not card_payments_enabled():
        toast(callback_answer, texts("payment.card_unavailable"), alert=True)
        return
    try:
        payment = await run_sync(lava_invoice_create, user=user, package=package, language=texts.language)
    except AppError as error:
        logger.warning("lava.top invoice failed", extra={"code": error.code, "error": str(error)})
        toast(callback_answer, texts("payment.card_unavailable"), alert=True)
        return
    amount = keyboards.rub(payment.amount)
    await show(
        callback,
        texts("payment.card_link", tokens=payment.tokens, rub=amount),
        keyboards.pay_link(texts, url=payment.payment_url, amount=amount),
    )


# --- promo codes --------------------------------------------------------------------------


async def _redeem(message: Message, user: TelegramUser, texts: Texts, code: str) -> None:
    try:
        redemption = await run_sync(promo_redeem, user=user, code=code)
    except PromoRejected as rejected:
        await message.answer(texts(f"promo.{rejected.code}"), reply_markup=keyboards.balance(texts))
        return
    wallet = await run_sync(wallet_balance, user=user)
    await message.answer(
        texts("promo.ok", tokens=redemption.entry.amount, available=wallet.available),
        reply_markup=keyboards.main_menu(texts),
    )


@router.message(Command("promo"))
async def promo_command(
    message: Message, command: CommandObject, state: FSMContext, user: TelegramUser, texts: Texts
) -> None:
    if command.args:
        await state.clear()
        await _redeem(message, user, texts, command.args)
        return
    await state.set_state(PromoInput.code)
    await message.answer(texts("promo.ask"), reply_markup=keyboards.cancel_input(texts))


@router.callback_query(MenuCb.filter(F.action == "promo"))
async def promo_button(callback: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await state.set_state(PromoInput.code)
    await show(callback, texts("promo.ask"), keyboards.cancel_input(texts))


@router.message(PromoInput.code, F.text)
async def promo_entered(message: Message, state: FSMContext, user: TelegramUser, texts: Texts) -> None:
    await state.clear()
    await _redeem(message, user, texts, message.text or "")


# --- daily bonus and invites -----------------------------------------------------------------


@router.callback_query(MenuCb.filter(F.action == "daily"))
async def daily_button(callback: CallbackQuery, user: TelegramUser, texts: Texts) -> None:
    await show(callback, await _daily(user, texts), keyboards.balance(texts))


@router.message(Command("bonus"))
async def daily_command(message: Message, user: TelegramUser, texts: Texts) -> None:
    await message.answer(await _daily(user, texts), reply_markup=keyboards.balance(texts))


async def _daily(user: TelegramUser, texts: Texts) -> str:
    bonus = await run_sync(daily_bonus_claim, user=user)
    if bonus.claimed:
        wallet = await run_sync(wallet_balance, user=user)
        return texts("daily.claimed", tokens=bonus.tokens, streak=bonus.streak, available=wallet.available)
    if bonus.tokens == 0:
        return texts("daily.disabled")
    return texts("daily.already", tokens=bonus.tokens, streak=bonus.streak, zone=zone_name())


@router.callback_query(MenuCb.filter(F.action == "invite"))
async def invite_button(callback: CallbackQuery, bot: Bot, user: TelegramUser, texts: Texts) -> None:
    await show(callback, await _invite(bot, user, texts), keyboards.balance(texts))


@router.message(Command("invite"))
async def invite_command(message: Message, bot: Bot, user: TelegramUser, texts: Texts) -> None:
    await message.answer(await _invite(bot, user, texts), reply_markup=keyboards.balance(texts))


async def _invite(bot: Bot, user: TelegramUser, texts: Texts) -> str:
    from django.conf import settings

    code = await run_sync(referral_code_get_or_create, user=user)
    me = await bot.me()
    link = f"https://t.me/{me.username}?start=ref_{code}"
    return texts(
        "invite.text",
        link=link,
        referrer=settings.REFERRAL_REFERRER_TOKENS,
        referred=settings.REFERRAL_REFERRED_TOKENS,
    )
