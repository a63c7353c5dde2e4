"""Signed media downloads: the link a user gets when Telegram refuses a file."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.http import require_safe

from nanobanana.core.errors import NotFound, ValidationError
from nanobanana.media import storage


@require_safe
def download(request: HttpRequest, token: str) -> HttpResponseBase:
    """Stream the file a signed token points at. Errors never name the
    storage path: 403 for a forged, malformed or expired link, 404 when the
    file is gone."""
    try:
        link = storage.media_link_verify(token=token)
        stored = storage.media_open(path=link.path)
    except storage.LinkExpired:
        return _error(403, "link_expired", "This link has expired.")
    except NotFound:
        return _error(404, "not_found", "This file is no longer available.")
    except ValidationError:
        return _error(403, "link_invalid", "This link is not valid.")

    response = FileResponse(
        stored,
        content_type=storage.media_content_type(path=link.path),
        as_attachment=False,
        filename=link.filename,
    )
    response["Cache-Control"] = "private, max-age=3600"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": {"code": code, "message": message}}, status=status)
