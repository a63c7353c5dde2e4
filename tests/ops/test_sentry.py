"""Sentry gets events only when configured, and never a secret."""

from __future__ import annotations

from django.conf import settings

from nanobanana.core.sentry import scrub, sentry_init


def test_without_a_dsn_nothing_is_initialised():
    assert sentry_init(dsn="", environment="x", release="y", traces_sample_rate=0.0) is False


def test_an_event_loses_the_bot_token_wherever_it_hides():
    token = settings.TELEGRAM_BOT_TOKEN
    event = {
        "message": f"POST https://api.telegram.org/bot{token}/sendMessage failed",
        "breadcrumbs": [{"data": {"url": f"https://api.telegram.org/bot{token}/getMe"}}],
        "extra": {"secret_half": token.split(":", 1)[1], "webhook": settings.TG_WEBHOOK_SECRET},
    }
    cleaned = scrub(event)
    text = repr(cleaned)
    assert token.split(":", 1)[1] not in text
    assert settings.TG_WEBHOOK_SECRET not in text
    assert cleaned["breadcrumbs"][0]["data"]["url"] == "https://api.telegram.org/bot[redacted]/getMe"


def test_any_setting_named_like_a_secret_is_redacted(settings):
    from nanobanana.core import logging as app_logging

    settings.OPENAI_API_KEY = "sk-test-0123456789abcdef"  # pragma: allowlist secret
    app_logging._secrets.cache_clear()
    try:
        assert scrub({"m": "key sk-test-0123456789abcdef used"}) == {"m": "key [redacted] used"}
    finally:
        app_logging._secrets.cache_clear()
