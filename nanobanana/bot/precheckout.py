"""Answering a Stars `pre_checkout_query` inside the webhook request.

Telegram waits at most 10 seconds for `answerPreCheckoutQuery`. Updates are
otherwise handled by the `bot.handle_updates` Celery task on the `updates`
queue, where a backlog (a burst of users, a slow worker, a broker hiccup)
could cost more than that and the user's payment would fail. So the webhook
decides the query itself (two indexed reads) and answers in its HTTP reply,
which Telegram performs as a Bot API call ("Making requests when getting
updates", https://core.telegram.org/bots/api#making-requests-when-getting-updates).
The update is still stored in the inbox, already marked done, so nothing
answers twice. With long polling there is no webhook reply and the dispatcher's
handler (`nanobanana.bot.handlers.payments.pre_checkout`) answers instead.
See docs/decisions/403-stars-payments-and-refunds.md.
"""

from __future__ import annotations

from typing import Any

from nanobanana.accounts.selectors import user_by_telegram_id
from nanobanana.accounts.services import language_from_code
from nanobanana.bot.texts import Texts
from nanobanana.payments.stars import stars_precheckout_check


def precheckout_reply(query: Any) -> dict[str, Any] | None:
    """The webhook reply answering `query`, or None when it is not a
    well-formed pre-checkout query (the dispatcher then deals with it)."""
    if not isinstance(query, dict):
        return None
    sender = query.get("from")
    query_id, payload = query.get("id"), query.get("invoice_payload")
    currency, total = query.get("currency"), query.get("total_amount")
    if (
        not isinstance(sender, dict)
        or not isinstance(sender.get("id"), int)
        or not isinstance(query_id, str)
        or not isinstance(payload, str)
        or not isinstance(currency, str)
        or not isinstance(total, int)
    ):
        return None
    refusal = stars_precheckout_check(telegram_id=sender["id"], payload=payload, currency=currency, total_amount=total)
    reply: dict[str, Any] = {
        "method": "answerPreCheckoutQuery",
        "pre_checkout_query_id": query_id,
        "ok": refusal is None,
    }
    if refusal is not None:
        user = user_by_telegram_id(telegram_id=sender["id"])
        language = user.language if user is not None else language_from_code(str(sender.get("language_code") or ""))
        reply["error_message"] = Texts(language)(refusal)
    return reply
