from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from nanobanana.ops.services import health_deep


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness without touching dependencies; `?deep=1` checks them all."""
    if request.GET.get("deep") in {"1", "true", "yes"}:
        ok, report = health_deep()
        return JsonResponse(report, status=200 if ok else 503)
    return JsonResponse({"ok": True, "version": settings.RELEASE_VERSION})
