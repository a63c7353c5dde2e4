from __future__ import annotations

from nanobanana.accounts.models import TelegramUser
from nanobanana.generation.models import GenerationRequest


def request_get(*, request_id: int) -> GenerationRequest:
    return GenerationRequest.objects.select_related("model", "user", "hold").get(pk=request_id)


def request_by_key(*, idempotency_key: str) -> GenerationRequest | None:
    return GenerationRequest.objects.filter(idempotency_key=idempotency_key).first()


def requests_recent(*, user: TelegramUser, limit: int = 10) -> list[GenerationRequest]:
    return list(GenerationRequest.objects.filter(user=user).select_related("model")[:limit])


def request_for_user(*, request_id: int, user: TelegramUser) -> GenerationRequest | None:
    return GenerationRequest.objects.filter(pk=request_id, user=user).select_related("model").first()
