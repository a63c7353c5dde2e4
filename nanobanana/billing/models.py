"""Wallets, their immutable ledger and token holds.

The ledger is the truth: a wallet's `balance` is a cache of the sum of its
entries, kept in the same transaction under the wallet's row lock and checked
by `billing_reconcile`. Holds reserve tokens without writing an entry; only a
capture does. See docs/decisions/301-billing-ledger-and-holds.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length, Trim
from django.db.models.lookups import GreaterThan

from nanobanana.accounts.models import TelegramUser

IDEMPOTENCY_KEY_MAX_LENGTH = 200
HOLD_REFERENCE_MAX_LENGTH = 200


class Wallet(models.Model):
    """One per user. `balance` = sum of ledger entries, `held` = sum of active holds."""

    user = models.OneToOneField(TelegramUser, on_delete=models.PROTECT, related_name="wallet")
    balance = models.BigIntegerField(default=0, help_text="Cached sum of the ledger entries.")
    held = models.BigIntegerField(default=0, help_text="Sum of the holds still in status 'held'.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = (("adjust_balance", "Can adjust a wallet balance with a ledger entry"),)
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="billing_wallet_balance_non_negative"),
            models.CheckConstraint(condition=Q(held__gte=0), name="billing_wallet_held_non_negative"),
            models.CheckConstraint(condition=Q(balance__gte=F("held")), name="billing_wallet_available_non_negative"),
        ]

    def __str__(self) -> str:
        return f"wallet of {self.user} ({self.balance}, held {self.held})"

    @property
    def available(self) -> int:
        return self.balance - self.held


class EntryKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    BONUS = "bonus", "Bonus"
    PROMO = "promo", "Promo code"
    REFUND = "refund", "Refund"
    CAPTURE = "capture", "Capture of a hold"
    ADJUSTMENT = "adjustment", "Operator adjustment"


# A tuple, not a set: the CHECK constraint below lists these, and a set's order
# changes from run to run, which makemigrations would read as a change.
CREDIT_KINDS = (EntryKind.PURCHASE, EntryKind.BONUS, EntryKind.PROMO, EntryKind.REFUND)


class HoldStatus(models.TextChoices):
    HELD = "held", "Held"
    CAPTURED = "captured", "Captured"
    RELEASED = "released", "Released"


class Hold(models.Model):
    """Tokens reserved for a piece of work; captured or released exactly once.

    Every transition is a conditional UPDATE ... WHERE status = 'held', and the
    constraints below make the three states mutually consistent.
    """

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="holds")
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.HELD)
    captured_amount = models.BigIntegerField(default=0)
    reference = models.CharField(
        max_length=HOLD_REFERENCE_MAX_LENGTH,
        unique=True,
        help_text="What the tokens are held for, e.g. 'generation:123'. Placing twice is a no-op.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["wallet", "status"], name="billing_hold_wallet_status"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_hold_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=HoldStatus.values), name="billing_hold_status_valid"),
            models.CheckConstraint(
                condition=Q(captured_amount__gte=0, captured_amount__lte=F("amount")),
                name="billing_hold_captured_within_amount",
            ),
            # Only a captured hold has captured anything, and it captured something.
            models.CheckConstraint(
                condition=Q(status=HoldStatus.CAPTURED, captured_amount__gt=0)
                | (~Q(status=HoldStatus.CAPTURED) & Q(captured_amount=0)),
                name="billing_hold_captured_amount_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(status=HoldStatus.HELD, resolved_at__isnull=True)
                | (~Q(status=HoldStatus.HELD) & Q(resolved_at__isnull=False)),
                name="billing_hold_resolved_iff_not_held",
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.reference} ({self.amount}, {self.status})"


class LedgerEntry(models.Model):
    """One immutable movement of tokens. Rows are inserted, never updated or deleted."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = models.BigIntegerField(help_text="Signed: credits are positive, captures negative.")
    balance_after = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH, unique=True)
    reason = models.TextField(blank=True)
    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="entries")
    # PROTECT: the audit trail must keep who adjusted; deactivate operators instead of deleting them.
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="billing_adjustments",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["wallet", "-id"], name="billing_entry_wallet_recent"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=~Q(amount=0), name="billing_entry_amount_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="billing_entry_balance_after_non_negative"),
            models.CheckConstraint(condition=Q(kind__in=EntryKind.values), name="billing_entry_kind_valid"),
            # Credits add, captures take away; only an operator adjustment may go either way.
            models.CheckConstraint(
                condition=~Q(kind__in=[kind.value for kind in CREDIT_KINDS]) | Q(amount__gt=0),
                name="billing_entry_credit_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.CAPTURE) | Q(amount__lt=0, hold__isnull=False),
                name="billing_entry_capture_negative_with_hold",
            ),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.ADJUSTMENT) | Q(GreaterThan(Length(Trim("reason")), 0)),
                name="billing_entry_adjustment_has_reason",
            ),
            models.UniqueConstraint(
                fields=["hold"],
                condition=Q(kind=EntryKind.CAPTURE),
                name="billing_entry_one_capture_per_hold",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.idempotency_key})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("ledger entries are immutable; add a new entry instead")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("ledger entries are immutable; add a new entry instead")


class PromoCode(models.Model):
    """A code worth a fixed number of tokens, with total and per-user limits
    and an optional validity window. `uses` counts redemptions and is raised
    only by a conditional UPDATE, so no race can exceed `max_uses`."""

    code = models.CharField(max_length=32, unique=True, help_text="Stored upper-case; users may type any case.")
    tokens = models.PositiveIntegerField()
    max_uses = models.PositiveIntegerField(help_text="Redemptions allowed in total.")
    per_user_limit = models.PositiveIntegerField(default=1, help_text="Redemptions allowed per user.")
    uses = models.PositiveIntegerField(default=0, editable=False)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(tokens__gt=0), name="billing_promo_tokens_positive"),
            models.CheckConstraint(condition=Q(max_uses__gt=0), name="billing_promo_max_uses_positive"),
            models.CheckConstraint(condition=Q(per_user_limit__gt=0), name="billing_promo_per_user_positive"),
            models.CheckConstraint(condition=Q(uses__lte=F("max_uses")), name="billing_promo_uses_within_limit"),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="billing_promo_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.tokens} tokens, {self.uses}/{self.max_uses})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class PromoRedemption(models.Model):
    """One use of a code by a user; `number` is 1..per_user_limit."""

    promo = models.ForeignKey(PromoCode, on_delete=models.PROTECT, related_name="redemptions")
    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="promo_redemptions")
    number = models.PositiveIntegerField()
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="promo_redemption")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["promo", "user", "number"], name="billing_promo_redemption_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.promo.code} by {self.user_id} #{self.number}"


class DailyBonusClaim(models.Model):
    """One claim per user per bonus day (see docs/decisions for the boundary)."""

    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="daily_bonus_claims")
    day = models.DateField()
    streak = models.PositiveIntegerField()
    tokens = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["user", "day"], name="billing_daily_bonus_once_a_day"),
            models.CheckConstraint(condition=Q(streak__gt=0), name="billing_daily_bonus_streak_positive"),
        ]

    def __str__(self) -> str:
        return f"daily bonus {self.user_id} {self.day} (streak {self.streak})"


class ReferralCode(models.Model):
    """The code in a user's invite link (`/start ref_<code>`); opaque, so the
    link does not reveal the Telegram id."""

    user = models.OneToOneField(TelegramUser, on_delete=models.PROTECT, related_name="referral_code")
    code = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.code} ({self.user_id})"


class Referral(models.Model):
    """Who invited whom. Each user is invited at most once; both sides are
    rewarded once, on the invited user's first purchase."""

    referrer = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="referrals_made")
    referred = models.OneToOneField(TelegramUser, on_delete=models.PROTECT, related_name="referral")
    created_at = models.DateTimeField(auto_now_add=True)
    rewarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=~Q(referrer=F("referred")), name="billing_referral_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.referrer_id} -> {self.referred_id}"
