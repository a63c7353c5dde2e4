"""Token packages, payments (Telegram Stars and lava.top) and the quarantine
of payment notifications that match nothing.

Tokens reach a wallet only through `nanobanana.billing.services`; a payment
row records where they came from and keys the ledger entry, so a replayed
notification finds the row and credits nothing."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import Hold


class TokenPackage(models.Model):
    """What a user can buy. Operators edit prices and switch packages off."""

    slug = models.SlugField(max_length=40, unique=True)
    tokens = models.PositiveIntegerField()
    price_stars = models.PositiveIntegerField(help_text="Price in Telegram Stars (XTR).")
    price_rub = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Card price through lava.top in RUB; empty: not sold by card.",
    )
    lava_offer_id = models.CharField(
        max_length=64, blank=True, help_text="The lava.top offer (product price) this package is sold as."
    )
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("sort_order", "tokens")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(tokens__gt=0), name="payments_package_tokens_positive"),
            models.CheckConstraint(condition=Q(price_stars__gt=0), name="payments_package_stars_positive"),
            models.CheckConstraint(
                condition=Q(price_rub__isnull=True) | Q(price_rub__gt=0), name="payments_package_rub_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slug}: {self.tokens} tokens"

    @property
    def sold_by_card(self) -> bool:
        return self.price_rub is not None and bool(self.lava_offer_id)


class Provider(models.TextChoices):
    STARS = "stars", "Telegram Stars"
    LAVA = "lava", "lava.top (card)"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # a lava.top invoice waiting for its result
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    REFUNDING = "refunding", "Refund in progress"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    """One payment for one package. `external_id` is Telegram's
    `telegram_payment_charge_id` or lava.top's invoice (contract) id."""

    provider = models.CharField(max_length=8, choices=Provider.choices)
    external_id = models.CharField(max_length=128)
    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="payments")
    package = models.ForeignKey(TokenPackage, on_delete=models.PROTECT, related_name="payments")
    tokens = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=8)
    status = models.CharField(max_length=12, choices=PaymentStatus.choices)
    payment_url = models.URLField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_reason = models.TextField(blank=True)
    refund_hold = models.ForeignKey(
        Hold,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Reserves the tokens while Telegram is asked to refund.",
    )
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="payment_refunds"
    )

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "status"], name="payments_payment_user_status"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="payments_payment_unique_external_id"),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payments_payment_status_valid"),
            models.CheckConstraint(condition=Q(tokens__gt=0), name="payments_payment_tokens_positive"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.external_id} ({self.status})"

    @property
    def ledger_key(self) -> str:
        return f"payment:{self.provider}:{self.external_id}"


class IncidentKind(models.TextChoices):
    UNKNOWN_INVOICE = "unknown_invoice", "Matches no invoice"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount or currency does not match"
    UNKNOWN_PACKAGE = "unknown_package", "Names no package or another user"


class PaymentIncident(models.Model):
    """A payment notification we did not credit, kept for an operator.

    Nothing here ever moves tokens: an operator investigates and, if the money
    is real, credits by hand through the wallet's "Adjust balance" form."""

    provider = models.CharField(max_length=8, choices=Provider.choices)
    external_id = models.CharField(max_length=128)
    kind = models.CharField(max_length=20, choices=IncidentKind.choices)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="incidents")
    payload = models.JSONField(default=dict)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # A replayed notification is one incident, not many.
            models.UniqueConstraint(fields=["provider", "external_id", "kind"], name="payments_incident_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.external_id}: {self.kind}"
