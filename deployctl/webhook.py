"""The Telegram webhook of one environment's bot: set (idempotent, with the
secret and the update types the bot really handles), read, verify.

Never sends `drop_pending_updates` (it would drop unhandled payments too),
and refuses to run for anything but the long-lived environments: one token
has one webhook, and a preview must not steal it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from deployctl.clients.telegram import TelegramClient
from deployctl.errors import ConfigError, Refused
from deployctl.report import Result
from deployctl.settings import ENVIRONMENT_BRANCHES, WEBHOOK_PATH
from deployctl.verdict import CheckResult, Verdict, combine, failed, passed

SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
PREVIEW_HOST = re.compile(r"-pr-\d+", re.IGNORECASE)
DEFAULT_MAX_CONNECTIONS = 40


def ensure_long_lived(environment: str, base_url: str) -> None:
    """Refuse previews: only staging and production own a bot and its webhook."""
    if environment not in ENVIRONMENT_BRANCHES or PREVIEW_HOST.search(base_url):
        raise Refused(
            f"refusing to touch the webhook from {environment!r} ({base_url}): only "
            f"{' and '.join(ENVIRONMENT_BRANCHES)} own a bot; a preview would take over their webhook"
        )


def webhook_url(base_url: str) -> str:
    return base_url.rstrip("/") + WEBHOOK_PATH


def load_allowed_updates(path: Path) -> list[str]:
    """The JSON list written by `python manage.py bot_update_types`."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the update types from {path}: {exc}") from None
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{path} must hold a non-empty JSON list of update type names")
    return sorted(set(value))


def check_secret(secret: str | None) -> str:
    if not secret:
        raise ConfigError("TG_WEBHOOK_SECRET is not set")
    if not SECRET_PATTERN.fullmatch(secret):
        raise ConfigError("TG_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
    return secret


def webhook_set(
    bot: TelegramClient,
    *,
    environment: str,
    base_url: str,
    secret: str | None,
    allowed_updates: list[str],
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> Result:
    """Point the bot at this environment. Safe to repeat: the same call sets the same state."""
    ensure_long_lived(environment, base_url)
    secret = check_secret(secret)
    url = webhook_url(base_url)
    before = bot.get_webhook_info()
    bot.set_webhook(url=url, secret_token=secret, allowed_updates=allowed_updates, max_connections=max_connections)
    after = bot.get_webhook_info()
    changed = before.url != url or sorted(before.allowed_updates or []) != allowed_updates
    lines = [
        f"url: {before.url or '(none)'} -> {after.url}",
        f"allowed_updates: {', '.join(allowed_updates)}",
        f"pending updates kept: {after.pending_update_count}",
    ]
    return Result(
        "webhook set",
        Verdict.PASS,
        f"Webhook of {environment} {'changed' if changed else 'unchanged (set again)'}",
        lines,
        {"changed": changed, "before": before.to_json(), "after": after.to_json()},
    )


def webhook_checks(
    bot: TelegramClient, *, base_url: str, allowed_updates: list[str] | None, since: float | None
) -> tuple[list[CheckResult], dict[str, object]]:
    info = bot.get_webhook_info()
    url = webhook_url(base_url)
    checks = [
        passed("url", url) if info.url == url else failed("url", f"is {info.url or '(none)'}, expected {url}"),
    ]
    if allowed_updates is not None:
        have = sorted(info.allowed_updates or [])
        if have == allowed_updates:
            checks.append(passed("allowed_updates", ", ".join(have)))
        else:
            checks.append(failed("allowed_updates", f"is {have or 'default'}, expected {allowed_updates}"))
    if info.last_error_date and (since is None or info.last_error_date >= since):
        checks.append(failed("last_error", f"{info.last_error_message} (at {info.last_error_date})"))
    else:
        checks.append(passed("last_error", "no delivery error" + (" since then" if since else "")))
    checks.append(passed("pending", f"{info.pending_update_count} pending updates"))
    return checks, info.to_json()


def webhook_verify(
    bot: TelegramClient,
    *,
    environment: str,
    base_url: str,
    allowed_updates: list[str] | None = None,
    since: float | None = None,
) -> Result:
    """Read the webhook back and compare it with what this environment needs."""
    ensure_long_lived(environment, base_url)
    checks, info = webhook_checks(bot, base_url=base_url, allowed_updates=allowed_updates, since=since)
    verdict = combine(check.verdict for check in checks)
    lines = [f"{check.verdict.value}: {check.name}: {check.reason}" for check in checks]
    return Result("webhook verify", verdict, f"Webhook of {environment}", lines, {"info": info})
