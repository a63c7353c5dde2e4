"""Telegram Stars: invoice payloads, the pre-checkout decision, crediting a
successful payment exactly once, and operator refunds.

https://core.telegram.org/bots/payments-stars
https://core.telegram.org/bots/api#answerprecheckoutquery
https://core.telegram.org/bots/api#refundstarpayment
See docs/decisions/403-stars-payments-and-refunds.md.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.bonuses import referral_reward_on_purchase
from nanobanana.billing.models import EntryKind, Hold
from nanobanana.billing.services import hold_capture, hold_place, hold_release, wallet_credit
from nanobanana.core import clock
from nanobanana.core.errors import Conflict, NotFound, ValidationError
from nanobanana.core.tasks import enqueue
from nanobanana.payments.models import IncidentKind, Payment, PaymentIncident, PaymentStatus, Provider, TokenPackage

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

CURRENCY = "XTR"
PAYLOAD = re.compile(r"^pkg:(\d{1,12}):u:(\d{1,20})$")
TASK_REFUND = "payments.stars_refund"


def stars_invoice_payload(*, package: TokenPackage, telegram_id: int) -> str:
    """The invoice payload names the package and the buyer (well under 128 bytes)."""
    return f"pkg:{package.pk}:u:{telegram_id}"


@dataclass(frozen=True)
class ParsedPayload:
    package_id: int
    telegram_id: int


def stars_payload_parse(payload: str) -> ParsedPayload | None:
    match = PAYLOAD.match(payload or "")
    if match is None:
        return None
    return ParsedPayload(package_id=int(match[1]), telegram_id=int(match[2]))


def stars_precheckout_check(*, telegram_id: int, payload: str, currency: str, total_amount: int) -> str | None:
    """Decide a pre_checkout_query: None to accept, else the reason's text key
    (`payment.refuse_*`). Cheap on purpose: it runs inside the webhook request,
    which must answer well within Telegram's 10 seconds."""
    parsed = stars_payload_parse(payload)
    if parsed is None:
        return "payment.refuse_package"
    if parsed.telegram_id != telegram_id:
        return "payment.refuse_user"
    package = TokenPackage.objects.filter(pk=parsed.package_id, is_active=True).first()
    if package is None:
        return "payment.refuse_package"
    if currency != CURRENCY or total_amount != package.price_stars:
        return "payment.refuse_price"
    return None


@dataclass(frozen=True)
class StarsOutcome:
    """What `stars_payment_record` did: `payment` is None when quarantined."""

    payment: Payment | None
    credited: bool


def stars_payment_record(
    *, user: TelegramUser, payload: str, currency: str, total_amount: int, charge_id: str
) -> StarsOutcome:
    """Credit a `successful_payment` exactly once, keyed by
    `telegram_payment_charge_id` (unique Payment row + ledger idempotency key).

    Telegram took the Stars already, so a payment we cannot place (unknown
    package, another user's payload, a wrong amount) is quarantined as a
    PaymentIncident for an operator and credited to nobody."""
    if not charge_id:
        raise ValidationError("a Stars payment needs telegram_payment_charge_id")
    existing = _payment_by_charge(charge_id)
    if existing is not None:
        return StarsOutcome(payment=existing, credited=False)
    parsed = stars_payload_parse(payload)
    package = TokenPackage.objects.filter(pk=parsed.package_id).first() if parsed else None
    problem = None
    if parsed is None or package is None or parsed.telegram_id != user.telegram_id:
        problem = IncidentKind.UNKNOWN_PACKAGE
    elif currency != CURRENCY or total_amount != package.price_stars:
        problem = IncidentKind.AMOUNT_MISMATCH
    if problem is not None or package is None:
        incident_record(
            provider=Provider.STARS,
            external_id=charge_id,
            kind=problem or IncidentKind.UNKNOWN_PACKAGE,
            payload={"payload": payload, "currency": currency, "total_amount": total_amount, "user": user.telegram_id},
            detail="successful_payment that matches no package of this user at this price",
        )
        return StarsOutcome(payment=None, credited=False)
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                provider=Provider.STARS,
                external_id=charge_id,
                user=user,
                package=package,
                tokens=package.tokens,
                amount=Decimal(total_amount),
                currency=CURRENCY,
                status=PaymentStatus.PAID,
                paid_at=clock.now(),
            )
            wallet_credit(
                user=user,
                amount=package.tokens,
                kind=EntryKind.PURCHASE,
                idempotency_key=payment.ledger_key,
                reason=f"Stars: {package.slug}",
            )
            referral_reward_on_purchase(user=user)
    except IntegrityError:
        # The same charge raced in through another worker; it won.
        raced = Payment.objects.get(provider=Provider.STARS, external_id=charge_id)
        return StarsOutcome(payment=raced, credited=False)
    return StarsOutcome(payment=payment, credited=True)


def _payment_by_charge(charge_id: str) -> Payment | None:
    return Payment.objects.filter(provider=Provider.STARS, external_id=charge_id).first()


def incident_record(
    *,
    provider: Provider,
    external_id: str,
    kind: IncidentKind,
    payload: dict[str, object],
    detail: str,
    payment: Payment | None = None,
) -> PaymentIncident:
    """Quarantine a notification for an operator; a replay returns the first row."""
    incident, created = PaymentIncident.objects.get_or_create(
        provider=provider,
        external_id=external_id[:128],
        kind=kind,
        defaults={"payload": payload, "detail": detail, "payment": payment},
    )
    if created:
        logger.warning(
            "payment quarantined", extra={"provider": provider, "external_id": external_id, "kind": str(kind)}
        )
    return incident


# --- refunds -----------------------------------------------------------------


def stars_refund_request(*, payment_id: int, operator: User | None, reason: str) -> Payment:
    """Start an operator's refund of a Stars payment.

    `refundStarPayment` gives back the whole payment, so the whole credit must
    come back too: the package's tokens are reserved at once with a hold (the
    user cannot spend them while Telegram is asked), and the refund is refused
    with InsufficientFunds when the user has already spent some of them. The
    Bot API call runs in the `payments.stars_refund` task; its outcome
    captures the hold (tokens leave the wallet) or releases it."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("a refund needs a reason")
    payment = Payment.objects.select_related("user").filter(pk=payment_id, provider=Provider.STARS).first()
    if payment is None:
        raise NotFound(f"Stars payment {payment_id} does not exist")
    if payment.status != PaymentStatus.PAID:
        raise Conflict(f"payment {payment.external_id} is {payment.status}, not paid")
    with transaction.atomic():
        # InsufficientFunds propagates: nothing is changed, the operator sees why.
        # A fresh reference per attempt: a refused refund released its hold,
        # and a retry needs a hold of its own.
        reference = f"refund:payment:{payment.pk}:{uuid.uuid4().hex[:12]}"
        hold = hold_place(user=payment.user, amount=payment.tokens, reference=reference)
        won = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PAID).update(
            status=PaymentStatus.REFUNDING, refund_reason=reason, refunded_by=operator, error="", refund_hold=hold
        )
        if not won:
            raise Conflict(f"payment {payment.external_id} is already being refunded")
        enqueue(TASK_REFUND, payment.pk)
    logger.info("stars refund requested", extra={"payment_id": payment.pk, "hold_id": hold.pk})
    payment.refresh_from_db()
    return payment


def stars_refund_finish(*, payment_id: int, refunded: bool, error: str = "") -> Payment:
    """Record the Bot API's answer: refunded -> capture the hold (the tokens
    leave the ledger as one capture entry) and mark the payment refunded;
    refused -> release the hold and put the payment back to paid."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != PaymentStatus.REFUNDING or payment.refund_hold_id is None:
        return payment  # finished before (a retried task)
    hold = Hold.objects.get(pk=payment.refund_hold_id)
    with transaction.atomic():
        if refunded:
            hold_capture(hold_id=hold.pk)
            Payment.objects.filter(pk=payment.pk, status=PaymentStatus.REFUNDING).update(
                status=PaymentStatus.REFUNDED, refunded_at=clock.now()
            )
        else:
            hold_release(hold_id=hold.pk)
            Payment.objects.filter(pk=payment.pk, status=PaymentStatus.REFUNDING).update(
                status=PaymentStatus.PAID, error=error[:2000]
            )
    payment.refresh_from_db()
    return payment
