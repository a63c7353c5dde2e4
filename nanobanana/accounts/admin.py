from __future__ import annotations

from django.contrib import admin

from nanobanana.accounts.models import TelegramUser


@admin.register(TelegramUser)
class TelegramUserAdmin(admin.ModelAdmin[TelegramUser]):
    list_display = ("telegram_id", "username", "first_name", "language", "blocked_bot_at", "created_at", "last_seen_at")
    list_filter = ("language", ("blocked_bot_at", admin.EmptyFieldListFilter))
    search_fields = ("telegram_id", "username", "first_name", "last_name")
    readonly_fields = ("telegram_id", "language_code", "created_at", "last_seen_at", "blocked_bot_at")
