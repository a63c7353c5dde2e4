"""Daily bonus with a streak, and referrals rewarded on the first purchase.

Every credit goes through `wallet_credit` with an idempotency key, and every
"once" is a database constraint, not a flag checked in Python. See
docs/decisions/404-bonuses-promo-referrals.md.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction

from nanobanana.billing.models import DailyBonusClaim, EntryKind, LedgerEntry, Referral, ReferralCode
from nanobanana.billing.services import wallet_credit
from nanobanana.core import clock

if TYPE_CHECKING:
    from nanobanana.accounts.models import TelegramUser

REFERRAL_CODE_ALPHABET = string.ascii_lowercase + string.digits
REFERRAL_CODE_LENGTH = 10
REFERRAL_CHAIN_LIMIT = 1000


def bonus_day(*, now: datetime | None = None) -> date:
    """The bonus day `now` falls in: the calendar date in BOT_TIME_ZONE."""
    return clock.local(now).date()


def daily_bonus_amount(*, streak: int) -> int:
    """Tokens for the `streak`-th consecutive day (1 = first day)."""
    base: int = settings.DAILY_BONUS_BASE_TOKENS
    step: int = settings.DAILY_BONUS_STREAK_STEP
    ceiling: int = settings.DAILY_BONUS_MAX_TOKENS
    return max(0, min(base + step * (streak - 1), ceiling))


@dataclass(frozen=True)
class DailyBonus:
    """`claimed` is True only for the call that granted today's bonus."""

    claimed: bool
    tokens: int
    streak: int
    day: date


def daily_bonus_claim(*, user: TelegramUser, now: datetime | None = None) -> DailyBonus:
    """Grant today's bonus once. A claim yesterday continues the streak; a
    missed day starts again at 1. A second claim the same day (also a racing
    one) grants nothing and reports the first."""
    today = bonus_day(now=now)
    existing = DailyBonusClaim.objects.filter(user=user, day=today).first()
    if existing is not None:
        return DailyBonus(claimed=False, tokens=existing.tokens, streak=existing.streak, day=today)
    yesterday = DailyBonusClaim.objects.filter(user=user, day=today - timedelta(days=1)).first()
    streak = yesterday.streak + 1 if yesterday is not None else 1
    tokens = daily_bonus_amount(streak=streak)
    if tokens <= 0:
        return DailyBonus(claimed=False, tokens=0, streak=0, day=today)
    try:
        with transaction.atomic():
            DailyBonusClaim.objects.create(user=user, day=today, streak=streak, tokens=tokens)
            wallet_credit(
                user=user,
                amount=tokens,
                kind=EntryKind.BONUS,
                idempotency_key=f"daily:{user.telegram_id}:{today.isoformat()}",
                reason=f"daily bonus, day {streak} of the streak",
            )
    except IntegrityError:
        first = DailyBonusClaim.objects.get(user=user, day=today)
        return DailyBonus(claimed=False, tokens=first.tokens, streak=first.streak, day=today)
    return DailyBonus(claimed=True, tokens=tokens, streak=streak, day=today)


# --- referrals ------------------------------------------------------------------


def referral_code_get_or_create(*, user: TelegramUser) -> str:
    """The user's invite code (random, stable once made)."""
    existing = ReferralCode.objects.filter(user=user).values_list("code", flat=True).first()
    if existing is not None:
        return existing
    for _ in range(5):
        code = "".join(secrets.choice(REFERRAL_CODE_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(user=user, code=code).code
        except IntegrityError:
            mine = ReferralCode.objects.filter(user=user).values_list("code", flat=True).first()
            if mine is not None:
                return mine  # a racing call made it
    raise RuntimeError("could not find a free referral code")  # pragma: no cover - 36**10 codes


class ReferralOutcome(StrEnum):
    ATTACHED = "attached"
    UNKNOWN_CODE = "unknown_code"
    SELF = "self"
    ALREADY_REFERRED = "already_referred"
    ALREADY_CUSTOMER = "already_customer"
    LOOP = "loop"


def referral_attach(*, referred: TelegramUser, code: str) -> ReferralOutcome:
    """Record that the owner of `code` invited `referred`.

    Refused: an unknown code, one's own code, a user who was invited before,
    a user who has bought before (the reward is for bringing new customers),
    and any loop (the referrer was, directly or through others, invited by
    `referred`)."""
    owner = ReferralCode.objects.filter(code=(code or "").strip().lower()).values_list("user_id", flat=True).first()
    if owner is None:
        return ReferralOutcome.UNKNOWN_CODE
    if owner == referred.pk:
        return ReferralOutcome.SELF
    if Referral.objects.filter(referred=referred).exists():
        return ReferralOutcome.ALREADY_REFERRED
    if LedgerEntry.objects.filter(wallet__user=referred, kind=EntryKind.PURCHASE).exists():
        return ReferralOutcome.ALREADY_CUSTOMER
    ancestor: int | None = owner
    for _ in range(REFERRAL_CHAIN_LIMIT):
        ancestor = Referral.objects.filter(referred_id=ancestor).values_list("referrer_id", flat=True).first()
        if ancestor is None:
            break
        if ancestor == referred.pk:
            return ReferralOutcome.LOOP
    try:
        with transaction.atomic():
            Referral.objects.create(referrer_id=owner, referred=referred)
    except IntegrityError:
        return ReferralOutcome.ALREADY_REFERRED
    return ReferralOutcome.ATTACHED


def referral_reward_on_purchase(*, user: TelegramUser) -> bool:
    """Reward both sides of `user`'s referral, once, if this is their first
    purchase. Call inside the transaction that credited the purchase."""
    referral = Referral.objects.filter(referred=user, rewarded_at__isnull=True).first()
    if referral is None:
        return False
    if LedgerEntry.objects.filter(wallet__user=user, kind=EntryKind.PURCHASE).count() != 1:
        return False
    won = Referral.objects.filter(pk=referral.pk, rewarded_at__isnull=True).update(rewarded_at=clock.now())
    if not won:
        return False
    referrer_tokens: int = settings.REFERRAL_REFERRER_TOKENS
    referred_tokens: int = settings.REFERRAL_REFERRED_TOKENS
    from nanobanana.accounts.models import TelegramUser as Users

    referrer = Users.objects.get(pk=referral.referrer_id)
    for who, tokens, side in ((referrer, referrer_tokens, "referrer"), (user, referred_tokens, "referred")):
        if tokens > 0:
            wallet_credit(
                user=who,
                amount=tokens,
                kind=EntryKind.BONUS,
                idempotency_key=f"referral:{referral.pk}:{side}",
                reason=f"referral reward ({side})",
            )
    return True
