from __future__ import annotations

from django.contrib import admin

from nanobanana.generation.models import GenerationRequest, GenerationResult


class GenerationResultInline(admin.TabularInline[GenerationResult, GenerationRequest]):
    model = GenerationResult
    extra = 0
    can_delete = False
    readonly_fields = ("index", "path", "content_type", "size", "width", "height", "sent_at")

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(GenerationRequest)
class GenerationRequestAdmin(admin.ModelAdmin[GenerationRequest]):
    list_display = ("id", "user", "model", "status", "delivery_status", "price", "error_code", "created_at")
    list_filter = ("status", "delivery_status", "model", "error_code")
    search_fields = ("id", "user__telegram_id", "user__username", "prompt", "provider_job_id")
    list_select_related = ("user", "model")
    inlines = [GenerationResultInline]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: object, obj: GenerationRequest | None = None) -> list[str]:
        # Requests change only through the lifecycle services.
        return [field.name for field in GenerationRequest._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
