"""Seeding the token packages from the fixture file (development and fresh installs)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from django.db import transaction

from nanobanana.payments.models import TokenPackage

FIXTURE_PATH = Path(__file__).resolve().parent / "fixtures" / "packages.yaml"


@transaction.atomic
def packages_seed(*, path: Path = FIXTURE_PATH) -> int:
    """Create the packages the fixture lists and the database lacks; returns
    how many were created. Existing packages are the operators' and are left
    exactly as they are."""
    created = 0
    for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
        price_rub = entry.get("price_rub")
        _, was_created = TokenPackage.objects.get_or_create(
            slug=entry["slug"],
            defaults={
                "tokens": int(entry["tokens"]),
                "price_stars": int(entry["price_stars"]),
                "price_rub": Decimal(str(price_rub)) if price_rub is not None else None,
                "lava_offer_id": entry.get("lava_offer_id", ""),
                "sort_order": int(entry.get("sort_order", 0)),
            },
        )
        created += was_created
    return created
