from __future__ import annotations

from nanobanana.accounts.models import TelegramUser
from nanobanana.generation.models import GenerationRequest, RequestStatus


def request_get(*, request_id: int) -> GenerationRequest:
    return GenerationRequest.objects.select_related("model", "user", "hold").get(pk=request_id)


def request_by_key(*, idempotency_key: str) -> GenerationRequest | None:
    return GenerationRequest.objects.filter(idempotency_key=idempotency_key).first()


def requests_recent(*, user: TelegramUser, limit: int = 10) -> list[GenerationRequest]:
    return list(GenerationRequest.objects.filter(user=user).select_related("model")[:limit])


def request_for_user(*, request_id: int, user: TelegramUser) -> GenerationRequest | None:
    return GenerationRequest.objects.filter(pk=request_id, user=user).select_related("model").first()


def requests_ahead(*, request: GenerationRequest) -> int:
    """How many requests wait to start before this one: its place in line
    when the workers are busy (0 when it is next or already started)."""
    if request.status != RequestStatus.QUEUED:
        return 0
    return GenerationRequest.objects.filter(status=RequestStatus.QUEUED, pk__lt=request.pk).count()
