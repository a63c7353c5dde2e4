from __future__ import annotations

from nanobanana.catalog.models import AIModel
from nanobanana.providers.registry import providers_configured


def models_offered(*, kind: str | None = None) -> list[AIModel]:
    """Enabled models whose provider is configured, in display order."""
    queryset = AIModel.objects.filter(enabled=True, provider__in=providers_configured())
    if kind:
        queryset = queryset.filter(kind=kind)
    return list(queryset)


def model_offered(*, slug: str) -> AIModel | None:
    return AIModel.objects.filter(slug=slug, enabled=True, provider__in=providers_configured()).first()


def model_by_id(*, model_id: int) -> AIModel:
    return AIModel.objects.get(pk=model_id)
