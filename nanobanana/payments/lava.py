"""lava.top card payments: the HTTP client, invoice creation and the webhook's
service.

lava.top's public API (https://gate.lava.top/docs, guide at
https://developers.lava.top/en): `POST /api/v2/invoice` with the key in the
`X-Api-Key` header and a JSON body `{email, offerId, currency, buyerLanguage}`
creates a purchase contract for an offer (a product price configured in the
lava.top account) and answers `{id, status, amountTotal: {amount, currency},
paymentUrl}`. The result comes to our webhook as JSON `{eventType:
"payment.success" | "payment.failed", contractId, amount, currency, status,
buyer: {email}, product: {id, title}, timestamp, errorMessage}`; lava.top
authenticates itself with the API key we configured for our service in the
same `X-Api-Key` header. See docs/decisions/405-lava-top-card-payments.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.bonuses import referral_reward_on_purchase
from nanobanana.billing.models import EntryKind
from nanobanana.billing.services import wallet_credit
from nanobanana.core import clock
from nanobanana.core.errors import PaymentError, TransientError, ValidationError
from nanobanana.core.tasks import enqueue
from nanobanana.payments.models import IncidentKind, Payment, PaymentStatus, Provider, TokenPackage
from nanobanana.payments.stars import incident_record

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-Api-Key"  # pragma: allowlist secret - a header name
INVOICE_PATH = "/api/v2/invoice"
CURRENCY = "RUB"
EVENT_SUCCESS = "payment.success"
EVENT_FAILED = "payment.failed"
TASK_NOTIFY = "payments.notify"


@dataclass(frozen=True)
class LavaInvoice:
    id: str
    status: str
    amount: Decimal
    currency: str
    payment_url: str


class LavaClient:
    """The few lava.top calls we make; one httpx client, named, with a timeout.

    Transient failures (timeouts, network errors, 429, 5xx) raise
    TransientError; anything else lava.top refuses raises PaymentError. The
    API key never appears in an error or a log line."""

    def __init__(
        self, *, api_key: str, base_url: str, timeout: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={API_KEY_HEADER: api_key, "Accept": "application/json", "User-Agent": "nanobanana-lava/1"},
        )

    def close(self) -> None:
        self._client.close()

    def invoice_create(self, *, email: str, offer_id: str, currency: str, buyer_language: str) -> LavaInvoice:
        """`POST /api/v2/invoice` (https://gate.lava.top/docs#/Invoices)."""
        body = {"email": email, "offerId": offer_id, "currency": currency, "buyerLanguage": buyer_language}
        try:
            response = self._client.post(INVOICE_PATH, json=body)
        except httpx.TimeoutException as error:
            raise TransientError("lava.top did not answer in time") from error
        except httpx.HTTPError as error:
            raise TransientError(f"lava.top unreachable: {type(error).__name__}") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"lava.top answered {response.status_code}")
        if response.status_code not in (200, 201):
            raise PaymentError(f"lava.top refused the invoice: {response.status_code} {_error_text(response)}")
        try:
            data = response.json()
            total = data["amountTotal"]
            return LavaInvoice(
                id=_required_text(data, "id"),
                status=str(data.get("status") or ""),
                amount=Decimal(str(total["amount"])),
                currency=_required_text(total, "currency"),
                payment_url=_required_text(data, "paymentUrl"),
            )
        except (ValueError, KeyError, TypeError, InvalidOperation) as error:
            raise PaymentError("lava.top answered an invoice we cannot read") from error


def _required_text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} missing")
    return value


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        return str(data.get("error") or data.get("message") or "")[:200]
    return ""


def lava_client() -> LavaClient:
    """The client from settings. Tests put their fake under it with respx."""
    return LavaClient(
        api_key=settings.LAVA_API_KEY, base_url=settings.LAVA_API_URL, timeout=settings.LAVA_TIMEOUT_SECONDS
    )


def lava_invoice_create(*, user: TelegramUser, package: TokenPackage, language: str) -> Payment:
    """Create a lava.top invoice for `package` and record it as a pending payment.

    Refuses (PaymentError) when card payment is not configured, the package is
    not sold by card, or lava.top's offer costs something else than the price
    the user was shown: the offer's price is what the card is charged."""
    if not settings.LAVA_API_KEY:
        raise PaymentError("card payments are not configured")
    if not package.sold_by_card or package.price_rub is None:
        raise ValidationError(f"package {package.slug} is not sold by card")
    client = lava_client()
    try:
        invoice = client.invoice_create(
            email=f"tg{user.telegram_id}@{settings.LAVA_BUYER_EMAIL_DOMAIN}",
            offer_id=package.lava_offer_id,
            currency=CURRENCY,
            buyer_language="EN" if language == "en" else "RU",
        )
    finally:
        client.close()
    if invoice.currency != CURRENCY or invoice.amount != package.price_rub:
        logger.error(
            "lava.top offer price differs from the package",
            extra={"package": package.slug, "offer": package.lava_offer_id, "invoice": invoice.id},
        )
        raise PaymentError(
            f"lava.top offer {package.lava_offer_id} costs {invoice.amount} {invoice.currency}, "
            f"package {package.slug} says {package.price_rub} {CURRENCY}"
        )
    return Payment.objects.create(
        provider=Provider.LAVA,
        external_id=invoice.id,
        user=user,
        package=package,
        tokens=package.tokens,
        amount=package.price_rub,
        currency=CURRENCY,
        status=PaymentStatus.PENDING,
        payment_url=invoice.payment_url,
    )


@dataclass(frozen=True)
class WebhookOutcome:
    """credited | failed | replay | quarantined | ignored"""

    result: str
    payment_id: int | None = None


def lava_webhook_handle(*, event: dict[str, Any]) -> WebhookOutcome:
    """Apply one authenticated lava.top notification, idempotently by invoice id.

    success: the pending (or earlier failed) invoice becomes paid and its
    tokens are credited once (ledger key `payment:lava:<id>`); a replay
    changes nothing. The amount and currency must equal the invoice's, else
    the notification is quarantined and nothing is credited. failed: the
    invoice is marked failed. An invoice we never created is quarantined and
    credited to nobody. ValidationError for a body without a contract id."""
    event_type = event.get("eventType")
    contract_id = event.get("contractId")
    if not isinstance(contract_id, str) or not contract_id.strip():
        raise ValidationError("a lava.top notification needs a contractId")
    if event_type not in (EVENT_SUCCESS, EVENT_FAILED):
        return WebhookOutcome("ignored")
    payment = Payment.objects.filter(provider=Provider.LAVA, external_id=contract_id).first()
    if payment is None:
        incident_record(
            provider=Provider.LAVA,
            external_id=contract_id,
            kind=IncidentKind.UNKNOWN_INVOICE,
            payload=event,
            detail=f"{event_type} for an invoice we did not create",
        )
        return WebhookOutcome("quarantined")
    if event_type == EVENT_FAILED:
        failed = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.FAILED, error=str(event.get("errorMessage") or "")[:2000]
        )
        if failed:
            enqueue(TASK_NOTIFY, payment.pk)
            return WebhookOutcome("failed", payment.pk)
        return WebhookOutcome("replay", payment.pk)
    if not _amount_matches(event, payment):
        incident_record(
            provider=Provider.LAVA,
            external_id=contract_id,
            kind=IncidentKind.AMOUNT_MISMATCH,
            payload=event,
            detail=f"expected {payment.amount} {payment.currency}",
            payment=payment,
        )
        return WebhookOutcome("quarantined", payment.pk)
    with transaction.atomic():
        won = Payment.objects.filter(pk=payment.pk, status__in=(PaymentStatus.PENDING, PaymentStatus.FAILED)).update(
            status=PaymentStatus.PAID, paid_at=clock.now(), error=""
        )
        if not won:
            return WebhookOutcome("replay", payment.pk)
        wallet_credit(
            user=payment.user,
            amount=payment.tokens,
            kind=EntryKind.PURCHASE,
            idempotency_key=payment.ledger_key,
            reason=f"card (lava.top): {payment.package.slug}",
        )
        referral_reward_on_purchase(user=payment.user)
        enqueue(TASK_NOTIFY, payment.pk)
    return WebhookOutcome("credited", payment.pk)


def _amount_matches(event: dict[str, Any], payment: Payment) -> bool:
    try:
        amount = Decimal(str(event.get("amount")))
    except InvalidOperation:
        return False
    return amount == payment.amount and event.get("currency") == payment.currency
