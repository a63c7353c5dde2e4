from __future__ import annotations

from decimal import Decimal

import pytest

from nanobanana.catalog.models import AIModel
from nanobanana.catalog.selectors import model_offered, models_offered
from nanobanana.catalog.services import catalog_seed, params_validate, price_from_cost, price_quote
from nanobanana.core.errors import ValidationError

pytestmark = pytest.mark.django_db


def test_price_in_tokens_comes_from_cost_rate_and_markup(settings):
    settings.TOKENS_PER_USD = 100
    settings.PRICE_MARKUP = 2
    assert price_from_cost(Decimal("0.039")) == 8  # 7.8 rounds up
    assert price_from_cost(Decimal("0.01")) == 2
    assert price_from_cost(Decimal("0")) == 1  # never free


def test_seed_is_idempotent_and_keeps_operator_prices():
    assert catalog_seed()[0] >= 2
    AIModel.objects.filter(slug="local-fast").update(price_per_unit=99, enabled=False)
    created, _ = catalog_seed()
    assert created == 0
    model = AIModel.objects.get(slug="local-fast")
    assert (model.price_per_unit, model.enabled) == (99, False)


def test_only_models_with_a_configured_provider_are_offered(catalog):
    offered = {model.provider for model in models_offered()}
    assert offered == {"local"}
    assert AIModel.objects.filter(provider="gemini").exists()


def test_params_get_defaults_and_price_multiplies_by_units(catalog):
    model = AIModel.objects.get(slug="local-studio")
    params = params_validate(model=model, raw={"count": 3})
    assert params == {"aspect_ratio": "1:1", "count": 3}
    assert price_quote(model=model, params=params) == 3 * model.price_per_unit


@pytest.mark.parametrize("raw", [{"count": 9}, {"aspect_ratio": "2:1"}, {"seed": 1}, {"count": "2"}])
def test_params_outside_the_schema_are_refused(catalog, raw):
    model = AIModel.objects.get(slug="local-fast")
    with pytest.raises(ValidationError):
        params_validate(model=model, raw=raw)


def test_local_models_are_not_offered_when_the_local_provider_is_off(catalog, settings):
    assert "local-fast" in [model.slug for model in models_offered(kind="image")]
    settings.LOCAL_PROVIDER_ENABLED = False
    assert [model.slug for model in models_offered(kind="image")] == []
    assert model_offered(slug="local-fast") is None
