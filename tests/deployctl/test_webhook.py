"""`webhook set|info|verify`: idempotent, never drops pending updates, refuses previews."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from deployctl.errors import ConfigError, Refused
from deployctl.webhook import load_allowed_updates, webhook_set, webhook_verify
from tests.deployctl.test_cli import run_cli

UPDATES = ["callback_query", "message", "pre_checkout_query"]


@pytest.fixture
def settings(settings, world):
    """Telegram only accepts HTTPS webhooks: give production a public-looking URL."""
    world.webhook.url = "https://bot.example.test/api/telegram/webhook"
    return replace(
        settings, base_urls={"production": "https://bot.example.test", "staging": "https://stg.example.test"}
    )


@pytest.fixture
def updates_file(tmp_path):
    path = tmp_path / "update-types.json"
    path.write_text(json.dumps(["message", "callback_query", "pre_checkout_query", "message"]))
    return path


def test_set_sends_url_secret_and_update_types_without_dropping_pending(settings, telegram_fake, world, updates_file):
    world.webhook.url = ""
    world.webhook.pending = 7
    code_url = settings.base_url("production") + "/api/telegram/webhook"
    result = webhook_set(
        settings.bot(),
        environment="production",
        base_url=settings.base_url("production"),
        secret=settings.webhook_secret,
        allowed_updates=load_allowed_updates(updates_file),
    )
    [call] = telegram_fake[0].set_webhook_calls
    assert call["url"] == code_url
    assert call["secret_token"] == "test-webhook-secret"
    assert call["allowed_updates"] == UPDATES
    assert "drop_pending_updates" not in call
    assert world.webhook_pending() == 7
    assert result.data["changed"] is True


def test_setting_twice_reports_unchanged_and_leaves_the_same_state(settings, telegram_fake, world, updates_file):
    args = {
        "environment": "production",
        "base_url": settings.base_url("production"),
        "secret": settings.webhook_secret,
        "allowed_updates": load_allowed_updates(updates_file),
    }
    webhook_set(settings.bot(), **args)
    second = webhook_set(settings.bot(), **args)
    assert second.data["changed"] is False
    assert second.data["before"] == second.data["after"]


@pytest.mark.parametrize(
    ("environment", "base_url"),
    [("pr-42", "https://bot.example.test"), ("production", "https://web-nanobanana-pr-42.up.railway.app")],
)
def test_preview_environments_are_refused_before_any_call(settings, telegram_fake, environment, base_url):
    with pytest.raises(Refused):
        webhook_set(settings.bot(), environment=environment, base_url=base_url, secret="s", allowed_updates=["message"])
    assert telegram_fake[0].set_webhook_calls == []


def test_an_invalid_secret_is_a_config_error_that_does_not_echo_it(settings, telegram_fake):
    with pytest.raises(ConfigError) as raised:
        webhook_set(
            settings.bot(),
            environment="production",
            base_url=settings.base_url("production"),
            secret="has spaces!",
            allowed_updates=["message"],
        )
    assert "has spaces!" not in str(raised.value)
    assert telegram_fake[0].set_webhook_calls == []


def test_verify_fails_on_a_narrow_update_list(settings, world):
    world.webhook.allowed_updates = ["message"]
    result = webhook_verify(
        settings.bot(), environment="production", base_url=settings.base_url("production"), allowed_updates=UPDATES
    )
    assert result.verdict.value == "fail"
    assert any(line.startswith("fail: allowed_updates") for line in result.lines)


def test_verify_passes_when_the_webhook_matches(settings, world):
    world.webhook.allowed_updates = list(UPDATES)
    result = webhook_verify(
        settings.bot(), environment="production", base_url=settings.base_url("production"), allowed_updates=UPDATES
    )
    assert result.verdict.value == "pass"


def test_update_types_file_must_be_a_non_empty_list(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{}")
    with pytest.raises(ConfigError):
        load_allowed_updates(path)


def test_webhook_set_command_refuses_a_preview_with_exit_5(settings, capsys, updates_file, telegram_fake):
    code, _, err = run_cli(
        ["webhook", "set", "--env", "pr-7", "--allowed-updates-file", str(updates_file)], settings, capsys
    )
    assert code == 5
    assert "pr-7" in err
    assert telegram_fake[0].set_webhook_calls == []
