from __future__ import annotations

from django.contrib import admin

from nanobanana.bot.models import InboxUpdate


@admin.register(InboxUpdate)
class InboxUpdateAdmin(admin.ModelAdmin[InboxUpdate]):
    list_display = ("update_id", "status", "attempts", "received_at", "handled_at", "error")
    list_filter = ("status",)
    search_fields = ("update_id",)
    readonly_fields = ("update_id", "payload", "status", "attempts", "error", "received_at", "started_at", "handled_at")

    def has_add_permission(self, request: object) -> bool:
        return False
