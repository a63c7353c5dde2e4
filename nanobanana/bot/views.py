"""The Telegram webhook: authenticate, cap, parse, store, then answer.

Telegram retries any non-2xx answer, so we answer 200 only after the update
is committed to the inbox, 503 when the database cannot take it, and 4xx
only for requests that will never become valid.

`webhook_answer` is the whole contract. Two transports call it: the Django
view below (the test client, and the fallback when the fast path is not
mounted) and the lean ASGI endpoint in `nanobanana.bot.webhook_asgi`, which
the web process serves in front of Django (no middleware, a bounded thread
pool for the database; see docs/benchmarks.md)."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from nanobanana.bot.inbox import inbox_store
from nanobanana.bot.precheckout import precheckout_reply

logger = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret

Answer = tuple[int, dict[str, Any]]


def _error(status: int, message: str) -> Answer:
    return status, {"ok": False, "error": message}


def webhook_precheck(*, secret: str, content_length: str | None) -> Answer | None:
    """The checks that need no body: the secret and the declared size.
    None when the body should be read."""
    expected = settings.TG_WEBHOOK_SECRET.encode()
    if not expected or not hmac.compare_digest(secret.encode(), expected):
        return _error(403, "forbidden")
    try:
        declared = int(content_length or 0)
    except ValueError:
        return _error(400, "bad content length")
    if declared > settings.TELEGRAM_WEBHOOK_MAX_BODY_BYTES:
        return _error(413, "body too large")
    return None


def webhook_answer(*, body: bytes) -> Answer:
    """Parse and store one update (blocking: call from a thread in async code)."""
    if len(body) > settings.TELEGRAM_WEBHOOK_MAX_BODY_BYTES:
        return _error(413, "body too large")
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "malformed JSON")
    update_id = update.get("update_id") if isinstance(update, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        return _error(400, "not a Telegram update")
    if b"\\u0000" in body:
        # PostgreSQL's jsonb cannot hold U+0000: the insert would fail on
        # every redelivery (503 until Telegram gives up, the update lost).
        update = _without_nul(update)
    try:
        # A pre-checkout query is answered right here, in the reply body:
        # Telegram gives it 10 s, more than the update queue may take.
        reply = precheckout_reply(update.get("pre_checkout_query"))
        stored = inbox_store(update_id=update_id, payload=update, handled=reply is not None)
    except DatabaseError:
        logger.exception("inbox unavailable", extra={"update_id": update_id})
        return _error(503, "storage unavailable")
    if reply is not None:
        # Also for a duplicate: Telegram redelivers when our answer was lost.
        return 200, reply
    return 200, {"ok": True, "duplicate": not stored}


def _without_nul(value: Any) -> Any:
    """`value` with U+0000 replaced by U+FFFD in every string and key."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest) -> JsonResponse:
    refused = webhook_precheck(
        secret=request.headers.get(SECRET_HEADER, ""), content_length=request.headers.get("Content-Length")
    )
    if refused is not None:
        status, payload = refused
        return JsonResponse(payload, status=status)
    try:
        body = request.body
    except RequestDataTooBig:
        status, payload = _error(413, "body too large")
        return JsonResponse(payload, status=status)
    status, payload = webhook_answer(body=body)
    return JsonResponse(payload, status=status)
