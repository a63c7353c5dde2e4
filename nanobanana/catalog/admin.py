from __future__ import annotations

from django.contrib import admin

from nanobanana.catalog.breaker import breaker_state
from nanobanana.catalog.models import AIModel
from nanobanana.providers.registry import providers_configured


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin[AIModel]):
    list_display = ("title", "slug", "kind", "provider", "unit", "price_per_unit", "enabled", "available", "breaker")
    list_filter = ("kind", "provider", "enabled")
    list_editable = ("price_per_unit", "enabled")
    search_fields = ("slug", "title", "provider_model")
    readonly_fields = ("cost_per_unit_usd",)

    @admin.display(boolean=True, description="provider configured")
    def available(self, obj: AIModel) -> bool:
        return obj.provider in providers_configured()

    @admin.display(description="circuit breaker")
    def breaker(self, obj: AIModel) -> str:
        state = breaker_state(model_id=obj.pk)
        return {"closed": "ok", "open": "temporarily unavailable", "probing": "probing"}[state]
