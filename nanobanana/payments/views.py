"""The lava.top webhook: authenticate, cap, parse, apply, answer.

lava.top authenticates with the API key we gave it for our service, in the
`X-Api-Key` header (compared in constant time). Bad or missing key: 401 and
nothing happens. 503 when the database is down, so lava.top retries."""

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

from nanobanana.core.errors import ValidationError
from nanobanana.payments.lava import API_KEY_HEADER, lava_webhook_handle

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message}, status=status)


@csrf_exempt
@require_POST
def lava_webhook(request: HttpRequest) -> JsonResponse:
    expected = settings.LAVA_WEBHOOK_API_KEY.encode()
    given = request.headers.get(API_KEY_HEADER, "").encode()
    if not expected or not hmac.compare_digest(given, expected):
        logger.warning("lava.top webhook refused: bad API key")
        return _error(401, "unauthorized")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "body too large")
    if len(body) > settings.LAVA_WEBHOOK_MAX_BODY_BYTES:
        return _error(413, "body too large")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "malformed JSON")
    if not isinstance(event, dict):
        return _error(400, "not a lava.top notification")
    try:
        outcome = lava_webhook_handle(event=event)
    except ValidationError as error:
        return _error(400, str(error))
    except DatabaseError:
        logger.exception("lava.top webhook: database unavailable")
        return _error(503, "storage unavailable")
    return JsonResponse({"ok": True, "result": outcome.result})
