"""The Telegram webhook: authenticate, cap, parse, store, then answer.

Telegram retries any non-2xx answer, so we answer 200 only after the update
is committed to the inbox, 503 when the database cannot take it, and 4xx
only for requests that will never become valid."""

from __future__ import annotations

import hmac
import json
import logging

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


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message}, status=status)


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest) -> JsonResponse:
    expected = settings.TG_WEBHOOK_SECRET.encode()
    given = request.headers.get(SECRET_HEADER, "").encode()
    if not expected or not hmac.compare_digest(given, expected):
        return _error(403, "forbidden")
    limit = settings.TELEGRAM_WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _error(400, "bad content length")
    if declared > limit:
        return _error(413, "body too large")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "body too large")
    if len(body) > limit:
        return _error(413, "body too large")
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "malformed JSON")
    update_id = update.get("update_id") if isinstance(update, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        return _error(400, "not a Telegram update")
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
        return JsonResponse(reply)
    return JsonResponse({"ok": True, "duplicate": not stored})
