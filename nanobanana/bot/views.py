"""The Telegram webhook: authenticate, cap, parse, store, then answer.

Telegram retries any non-2xx answer, so we answer 200 only after the update
is committed to the inbox, 503 when the database cannot take it, and 4xx
only for requests that will never become valid.

The contract is `webhook_precheck` (secret, declared size), `webhook_parse`
(a body that is an update, or its 4xx), `webhook_precheckout` and
`webhook_reply`; `webhook_answer` puts them together for one update. Two
transports use them: the Django view below (the test client, and the
fallback when the fast path is not mounted) and the lean ASGI endpoint in
`nanobanana.bot.webhook_asgi`, which the web process serves in front of
Django and which stores concurrent updates together (one INSERT, one commit,
one broker round trip per batch; docs/decisions/005-webhook-group-commit.md)."""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from nanobanana.bot.inbox import IncomingUpdate, inbox_store_many
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


@dataclass(frozen=True, slots=True)
class ParsedUpdate:
    """A body that is a Telegram update, ready to store."""

    update_id: int
    update: dict[str, Any]
    payload_json: str  # what the inbox stores: valid for PostgreSQL's jsonb

    def incoming(self, *, handled: bool) -> IncomingUpdate:
        return IncomingUpdate(update_id=self.update_id, payload_json=self.payload_json, handled=handled)


STORAGE_UNAVAILABLE: Answer = (503, {"ok": False, "error": "storage unavailable"})
_BIGINT_MAX = 2**63 - 1
# Escapes that PostgreSQL's jsonb refuses: U+0000 and UTF-16 surrogates (a
# lone one fails; a pair is cheap to rewrite too).
_JSONB_HAZARD = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_UNSAFE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def webhook_parse(*, body: bytes) -> ParsedUpdate | Answer:
    """Check one body without touching the database: the update to store,
    or the 4xx answer for a body that will never become valid.

    Whatever passes is insertable: a row the database refused would fail
    every redelivery (and, stored in a batch, its neighbours' too)."""
    if len(body) > settings.TELEGRAM_WEBHOOK_MAX_BODY_BYTES:
        return _error(413, "body too large")
    try:
        update = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _error(400, "malformed JSON")
    update_id = update.get("update_id") if isinstance(update, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool) or not 0 <= update_id <= _BIGINT_MAX:
        return _error(400, "not a Telegram update")
    if _JSONB_HAZARD.search(body):
        # Stored with U+FFFD in their place, not refused: the insert would
        # fail on every redelivery (503 until Telegram gives up, the update lost).
        update = _jsonb_safe(update)
        payload_json = json.dumps(update, ensure_ascii=False)
    elif body[:1] == b"{":
        # The body itself: already JSON, no need to serialize it again.
        payload_json = body.decode()  # valid UTF-8: json.loads read it as such
    else:
        # A BOM, leading whitespace or a UTF-16 body: normalized.
        payload_json = json.dumps(update, ensure_ascii=False)
    return ParsedUpdate(update_id=update_id, update=update, payload_json=payload_json)


def webhook_precheckout(parsed: ParsedUpdate) -> dict[str, Any] | None:
    """The webhook reply answering a pre-checkout query, None for any other
    update. Reads the database (blocking): Telegram gives the query 10 s,
    more than the update queue may take, so it is answered right here."""
    query = parsed.update.get("pre_checkout_query")
    return None if query is None else precheckout_reply(query)


def webhook_reply(*, stored: bool, reply: dict[str, Any] | None) -> Answer:
    """The 200 for an update that is in the inbox (`stored`: just now)."""
    if reply is not None:
        # Also for a duplicate: Telegram redelivers when our answer was lost.
        return 200, reply
    return 200, {"ok": True, "duplicate": not stored}


def webhook_answer(*, body: bytes) -> Answer:
    """Parse and store one update (blocking: call from a thread in async
    code). The ASGI endpoint stores many at once instead (webhook_asgi.py)."""
    parsed = webhook_parse(body=body)
    if not isinstance(parsed, ParsedUpdate):
        return parsed
    try:
        reply = webhook_precheckout(parsed)
        stored = inbox_store_many(updates=[parsed.incoming(handled=reply is not None)])
    except DatabaseError:
        logger.exception("inbox unavailable", extra={"update_id": parsed.update_id})
        return STORAGE_UNAVAILABLE
    return webhook_reply(stored=parsed.update_id in stored, reply=reply)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python reads NaN and Infinity; jsonb refuses them


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")  # 1e999: read as inf, written back as Infinity (not JSON)
    return value


def _jsonb_safe(value: Any) -> Any:
    """`value` with U+0000 and lone surrogates replaced by U+FFFD in every string and key."""
    if isinstance(value, str):
        return _UNSAFE_CHARACTERS.sub("\ufffd", value)
    if isinstance(value, list):
        return [_jsonb_safe(item) for item in value]
    if isinstance(value, dict):
        return {_jsonb_safe(key): _jsonb_safe(item) for key, item in value.items()}
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
