"""A model is offered only when its vendor's key is in the environment, and
the admin shows which are unavailable."""

from __future__ import annotations

import pytest

from nanobanana.catalog.admin import AIModelAdmin
from nanobanana.catalog.models import AIModel
from nanobanana.catalog.selectors import model_offered, models_offered
from nanobanana.providers.registry import providers_configured

pytestmark = pytest.mark.django_db

VENDOR_MODELS = {
    "gemini": {"nano-banana", "nano-banana-pro", "veo-fast", "veo"},
    "openai": {"gpt-image"},  # sora-2 is loaded switched off (the Videos API was shut down)
    "kling": {"kling-std", "kling-pro"},
    "runway": {"runway-gen4"},
}
KEYS = {
    "gemini": {"GEMINI_API_KEY": "test-gemini-key"},  # pragma: allowlist secret
    "openai": {"OPENAI_API_KEY": "sk-test"},  # pragma: allowlist secret
    "kling": {"KLING_ACCESS_KEY": "ak-test", "KLING_SECRET_KEY": "sk-test"},  # pragma: allowlist secret
    "runway": {"RUNWAYML_API_SECRET": "key_test"},  # pragma: allowlist secret
}


def offered_slugs() -> set[str]:
    return {model.slug for model in models_offered()}


def test_without_keys_only_the_local_models_are_offered(catalog):
    assert providers_configured() == ["local"]
    assert offered_slugs() == {"local-fast", "local-studio"}
    assert model_offered(slug="nano-banana") is None


@pytest.mark.parametrize("vendor", sorted(KEYS))
def test_a_vendor_key_makes_exactly_that_vendors_models_appear(catalog, monkeypatch, vendor):
    for name, value in KEYS[vendor].items():
        monkeypatch.setenv(name, value)
    assert offered_slugs() == {"local-fast", "local-studio"} | VENDOR_MODELS[vendor]


def test_sora_is_loaded_switched_off_and_operators_can_switch_it_on(catalog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # pragma: allowlist secret
    assert "sora-2" not in offered_slugs()
    AIModel.objects.filter(slug="sora-2").update(enabled=True)
    assert "sora-2" in offered_slugs()


def test_kling_needs_both_halves_of_its_key(catalog, monkeypatch):
    monkeypatch.setenv("KLING_ACCESS_KEY", "ak-test")
    assert "kling" not in providers_configured()


def test_vertex_ai_mode_needs_credentials_project_and_location(catalog, monkeypatch, tmp_path):
    credentials = tmp_path / "sa.json"
    credentials.write_text("{}")
    monkeypatch.setenv("USE_VERTEX_AI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    assert "gemini" not in providers_configured()  # no location yet
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    assert "gemini" in providers_configured()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    assert "gemini" not in providers_configured()


def test_the_admin_marks_models_without_a_key_unavailable(catalog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # pragma: allowlist secret
    admin = AIModelAdmin(AIModel, admin_site=None)  # type: ignore[arg-type]
    assert admin.available(AIModel.objects.get(slug="gpt-image")) is True
    assert admin.available(AIModel.objects.get(slug="nano-banana")) is False
    assert admin.available(AIModel.objects.get(slug="local-fast")) is True
