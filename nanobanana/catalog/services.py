"""Catalog writes and the rules that turn user choices into a priced job."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from nanobanana.catalog.models import AIModel, PriceUnit
from nanobanana.core.errors import ValidationError

FIXTURE_PATH = Path(__file__).resolve().parent / "fixtures" / "models.yaml"
SEEDED_FIELDS = (
    "title",
    "description_ru",
    "description_en",
    "kind",
    "provider",
    "provider_model",
    "parameters",
    "unit",
    "cost_per_unit_usd",
    "deadline_seconds",
    "max_input_images",
    "sort_order",
)


def price_from_cost(cost_per_unit_usd: Decimal) -> int:
    """Tokens per unit for a vendor cost, at the configured rate and markup."""
    tokens = float(cost_per_unit_usd) * settings.TOKENS_PER_USD * settings.PRICE_MARKUP
    return max(1, math.ceil(round(tokens, 6)))


def params_validate(*, model: AIModel, raw: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and refuse unknown names or values not in the schema."""
    specs = {spec["name"]: spec for spec in model.parameters}
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        raise ValidationError(f"unknown parameters for {model.slug}: {', '.join(unknown)}", code="invalid_params")
    params: dict[str, Any] = {}
    for name, spec in specs.items():
        value = raw.get(name, spec.get("default"))
        if value not in spec["choices"]:
            raise ValidationError(f"{name}={value!r} is not allowed for {model.slug}", code="invalid_params")
        params[name] = value
    return params


def units_for(*, model: AIModel, params: dict[str, Any]) -> int:
    """How many price units a job with these (validated) params consumes."""
    if model.unit == PriceUnit.GENERATION:
        return 1
    for spec in model.parameters:
        if spec.get("units"):
            return int(params[spec["name"]])
    return 1


def price_quote(*, model: AIModel, params: dict[str, Any]) -> int:
    return model.price_per_unit * units_for(model=model, params=params)


@transaction.atomic
def catalog_seed(*, path: Path = FIXTURE_PATH) -> tuple[int, int]:
    """Load the fixture: create missing models, refresh descriptive fields of
    existing ones. Operators' prices and on/off switches are kept. Returns
    (created, updated)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    created = updated = 0
    for entry in entries:
        values = {field: entry[field] for field in SEEDED_FIELDS if field in entry}
        values["cost_per_unit_usd"] = Decimal(str(entry["cost_per_unit_usd"]))
        model = AIModel.objects.filter(slug=entry["slug"]).first()
        if model is None:
            AIModel.objects.create(
                slug=entry["slug"],
                price_per_unit=price_from_cost(values["cost_per_unit_usd"]),
                # Only the first load reads `enabled`; afterwards it is the operators' switch.
                enabled=bool(entry.get("enabled", True)),
                **values,
            )
            created += 1
            continue
        changed = [field for field, value in values.items() if getattr(model, field) != value]
        if changed:
            for field in changed:
                setattr(model, field, values[field])
            model.save(update_fields=changed)
            updated += 1
    return created, updated
