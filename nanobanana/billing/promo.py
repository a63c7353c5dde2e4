"""Promo codes: redemption is one transaction under the code's row lock, so
no race can exceed the total or the per-user limit. See
docs/decisions/404-bonuses-promo-referrals.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F

from nanobanana.billing.models import EntryKind, PromoCode, PromoRedemption
from nanobanana.billing.services import wallet_credit
from nanobanana.core import clock
from nanobanana.core.errors import ValidationError

if TYPE_CHECKING:
    from nanobanana.accounts.models import TelegramUser

PROMO_CODE_MAX_LENGTH = 32


class PromoRejected(ValidationError):
    """A code that cannot be redeemed now; `code` names the reason's text:
    promo_unknown, promo_not_active, promo_exhausted, promo_used."""

    code = "promo_unknown"


def promo_redeem(*, user: TelegramUser, code: str) -> PromoRedemption:
    """Redeem `code` for `user`: credit its tokens and count the use.

    Raises PromoRejected with the reason. The code's row is locked
    (SELECT ... FOR UPDATE) for the whole check-and-count, so 100 concurrent
    redemptions of a 10-use code give exactly 10."""
    normalized = (code or "").strip().upper()
    if not normalized or len(normalized) > PROMO_CODE_MAX_LENGTH:
        raise PromoRejected("no such promo code", code="promo_unknown")
    with transaction.atomic():
        promo = PromoCode.objects.select_for_update().filter(code=normalized).first()
        if promo is None:
            raise PromoRejected("no such promo code", code="promo_unknown")
        now = clock.now()
        if (
            not promo.is_active
            or (promo.valid_from is not None and now < promo.valid_from)
            or (promo.valid_until is not None and now >= promo.valid_until)
        ):
            raise PromoRejected(f"promo code {promo.code} is not valid now", code="promo_not_active")
        if promo.uses >= promo.max_uses:
            raise PromoRejected(f"promo code {promo.code} is used up", code="promo_exhausted")
        used = PromoRedemption.objects.filter(promo=promo, user=user).count()
        if used >= promo.per_user_limit:
            raise PromoRejected(f"promo code {promo.code} already used by this user", code="promo_used")
        number = used + 1
        entry, _ = wallet_credit(
            user=user,
            amount=promo.tokens,
            kind=EntryKind.PROMO,
            idempotency_key=f"promo:{promo.pk}:{user.pk}:{number}",
            reason=f"promo code {promo.code}",
        )
        redemption = PromoRedemption.objects.create(promo=promo, user=user, number=number, entry=entry)
        PromoCode.objects.filter(pk=promo.pk).update(uses=F("uses") + 1)
        return redemption
