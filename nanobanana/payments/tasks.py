"""Celery shims for payments (queue `updates`): the Stars refund call and
the messages that follow a card payment's result."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from celery import shared_task

from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot.presenters import escape
from nanobanana.bot.runtime import bot_run
from nanobanana.bot.sender import RecipientBlocked
from nanobanana.bot.texts import Texts
from nanobanana.core.tasks import AppTask
from nanobanana.payments.models import Payment, PaymentStatus
from nanobanana.payments.stars import stars_refund_finish

logger = logging.getLogger(__name__)
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


@shared_task(name="payments.stars_refund", base=AppTask, time_limit=60, soft_time_limit=50)
def stars_refund(payment_id: int) -> str:
    """Ask Telegram to refund (refundStarPayment), then settle the held tokens.

    Network trouble and 5xx become TransientError in the sender, and the task
    retries with the tokens still held. "Already refunded" counts as done (an
    earlier attempt got through and its answer was lost)."""
    payment = Payment.objects.select_related("user").get(pk=payment_id)
    if payment.status != PaymentStatus.REFUNDING:
        return "skipped"
    telegram_id, charge_id = payment.user.telegram_id, payment.external_id

    async def refund(bot: Bot, _dispatcher: object) -> str:
        try:
            await bot.refund_star_payment(user_id=telegram_id, telegram_payment_charge_id=charge_id)
        except TelegramBadRequest as error:
            if ALREADY_REFUNDED in error.message:
                return ""
            return error.message or "refused"
        return ""

    error = bot_run(refund)
    payment = stars_refund_finish(payment_id=payment_id, refunded=not error, error=error)
    if payment.status == PaymentStatus.REFUNDED:
        _tell(payment, "payment.refunded", amount=int(payment.amount), tokens=payment.tokens)
        return "refunded"
    logger.warning("stars refund refused by Telegram", extra={"payment_id": payment_id, "error": error})
    return "refused"


@shared_task(name="payments.notify", base=AppTask, time_limit=60, soft_time_limit=50)
def notify(payment_id: int) -> str:
    """The receipt for a paid card payment, or the message for a failed one."""
    payment = Payment.objects.select_related("user").get(pk=payment_id)
    if payment.status == PaymentStatus.PAID:
        available = wallet_balance(user=payment.user).available
        _tell(
            payment,
            "payment.receipt_card",
            amount=payment.amount,
            currency=payment.currency,
            tokens=payment.tokens,
            available=available,
            invoice=escape(payment.external_id),
        )
        return "receipt"
    if payment.status == PaymentStatus.FAILED:
        _tell(payment, "payment.card_failed", tokens=payment.tokens)
        return "failed"
    return "skipped"


def _tell(payment: Payment, key: str, **values: object) -> None:
    text = Texts(payment.user.language)(key, **values)
    chat_id = payment.user.telegram_id

    async def send(bot: Bot, _dispatcher: object) -> None:
        try:
            await bot.send_message(chat_id, text)
        except RecipientBlocked:
            return

    bot_run(send)
