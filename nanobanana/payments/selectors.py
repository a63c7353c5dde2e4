"""Reads for payments. Nothing here writes."""

from __future__ import annotations

from django.conf import settings

from nanobanana.payments.models import TokenPackage


def packages_offered() -> list[TokenPackage]:
    """Active packages in menu order."""
    return list(TokenPackage.objects.filter(is_active=True).order_by("sort_order", "tokens"))


def package_get(*, package_id: int) -> TokenPackage | None:
    """An active package, or None."""
    return TokenPackage.objects.filter(pk=package_id, is_active=True).first()


def card_payments_enabled() -> bool:
    """Card payment (lava.top) is offered only with an API key configured."""
    return bool(settings.LAVA_API_KEY)
