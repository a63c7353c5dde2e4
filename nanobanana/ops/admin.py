from __future__ import annotations

from django.contrib import admin

from nanobanana.ops.models import Heartbeat

admin.site.site_header = "NanoBanana console"
admin.site.site_title = "NanoBanana"


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin[Heartbeat]):
    list_display = ("name", "beat_at", "detail")
    readonly_fields = ("name", "beat_at", "detail")
