"""Formatting shared by handlers and delivery: summaries, statuses, prices.

User-provided text (prompts, names) is HTML-escaped here, once."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from nanobanana.billing.selectors import WalletBalance
from nanobanana.bot.texts import Texts
from nanobanana.catalog.models import AIModel
from nanobanana.core import clock
from nanobanana.generation.models import GenerationRequest

PROMPT_PREVIEW_CHARS = 300


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def shorten(text: str, limit: int = PROMPT_PREVIEW_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def local_time(moment: datetime) -> str:
    """A moment as the bot shows it: day, month and time in BOT_TIME_ZONE, with
    the zone's abbreviation, since the person may live in another one."""
    return clock.local(moment).strftime("%d.%m %H:%M %Z")


def zone_name() -> str:
    """BOT_TIME_ZONE's abbreviation now ("MSK"; "+05" for a zone without one)."""
    return clock.local().strftime("%Z")


def params_label(texts: Texts, params: dict[str, Any]) -> str:
    """Every chosen parameter, in schema order; counts and seconds with their unit."""
    parts = []
    for name, value in params.items():
        if name == "count":
            parts.append(f"{value} {texts('create.images')}")
        elif name == "duration":
            parts.append(f"{value} {texts('create.seconds')}")
        elif name == "cfg_scale":
            parts.append(f"cfg {value}")
        else:
            parts.append(str(value))
    return " · ".join(parts)


def elapsed_label(seconds: float) -> str:
    """`m:ss` for the status of a job that is waiting."""
    whole = max(int(seconds), 0)
    return f"{whole // 60}:{whole % 60:02d}"


def summary(texts: Texts, request: GenerationRequest) -> str:
    return texts(
        "status.summary",
        model=escape(request.model.title),
        params=params_label(texts, request.params),
        prompt=escape(shorten(request.prompt)),
    )


def failure_reason(texts: Texts, code: str) -> str:
    key = f"reason.{code}"
    known = {
        "reason.policy_refusal",
        "reason.timeout",
        "reason.invalid_input",
        "reason.job_lost",
        "reason.provider_unavailable",
        "reason.result_invalid",
    }
    return texts(key if key in known else "reason.default")


def balance_text(texts: Texts, wallet: WalletBalance, models: list[AIModel]) -> str:
    lines = [texts("balance.text", available=wallet.available)]
    if wallet.held:
        lines.append(texts("balance.held", held=wallet.held))
    if models:
        lines += ["", texts("balance.prices")]
        lines += [
            texts(
                "balance.price_line",
                title=escape(model.title),
                price=model.price_per_unit,
                unit=texts(f"unit.{model.unit}"),
            )
            for model in models
        ]
    return "\n".join(lines)
