"""The daily reconciliation run: billing and payments checked against the
ledger, and the ops chat (OPS_CHAT_ID) told when anything is off."""

from __future__ import annotations

import logging

from aiogram import Bot
from django.conf import settings

from nanobanana.billing.reconciliation import reconcile
from nanobanana.payments.reconciliation import payments_reconcile

logger = logging.getLogger(__name__)
MAX_LINES = 30
MESSAGE_LIMIT = 4000


def reconcile_and_alert() -> int:
    """Run every check; on a mismatch log it and alert the ops chat. Returns
    the number of problems (0: clean)."""
    problems = reconcile() + payments_reconcile()
    if not problems:
        logger.info("reconciliation clean")
        return 0
    logger.error("reconciliation found problems", extra={"count": len(problems), "problems": problems[:MAX_LINES]})
    ops_alert(text=_alert_text(problems))
    return len(problems)


def _alert_text(problems: list[str]) -> str:
    lines = [f"⚠️ Reconciliation found {len(problems)} problem(s) in the ledger:"]
    lines += [f"• {problem}" for problem in problems[:MAX_LINES]]
    if len(problems) > MAX_LINES:
        lines.append(f"… and {len(problems) - MAX_LINES} more; run `manage.py billing_reconcile`.")
    return "\n".join(lines)[:MESSAGE_LIMIT]


def ops_alert(*, text: str) -> bool:
    """Send `text` (plain, no markup) to OPS_CHAT_ID; False when none is set."""
    chat: str = settings.OPS_CHAT_ID
    if not chat:
        logger.warning("OPS_CHAT_ID is unset: the alert went only to the log")
        return False
    from nanobanana.bot.runtime import bot_run

    chat_id: int | str = int(chat) if chat.lstrip("-").isdigit() else chat

    async def send(bot: Bot, _dispatcher: object) -> None:
        await bot.send_message(chat_id, text, parse_mode=None)

    bot_run(send)
    return True
