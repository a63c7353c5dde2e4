from __future__ import annotations

from django.db.models import QuerySet

from nanobanana.catalog.breaker import paused_model_ids
from nanobanana.catalog.models import AIModel
from nanobanana.providers.registry import providers_configured


def _offered() -> QuerySet[AIModel]:
    """Enabled, with a configured provider, and not paused by its circuit breaker."""
    return AIModel.objects.filter(enabled=True, provider__in=providers_configured()).exclude(pk__in=paused_model_ids())


def models_offered(*, kind: str | None = None) -> list[AIModel]:
    """The models users can buy now, in display order."""
    queryset = _offered()
    if kind:
        queryset = queryset.filter(kind=kind)
    return list(queryset)


def model_offered(*, slug: str) -> AIModel | None:
    return _offered().filter(slug=slug).first()


def model_by_id(*, model_id: int) -> AIModel:
    return AIModel.objects.get(pk=model_id)
