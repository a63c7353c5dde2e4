from __future__ import annotations

from django.db import models


class Language(models.TextChoices):
    RU = "ru", "Русский"
    EN = "en", "English"


class TelegramUser(models.Model):
    """A person who talks to the bot. `telegram_id` is Telegram's user id."""

    telegram_id = models.BigIntegerField(unique=True)
    username = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=128, blank=True)
    last_name = models.CharField(max_length=128, blank=True)
    language_code = models.CharField(max_length=16, blank=True, help_text="As Telegram reported it.")
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.RU)
    language_chosen = models.BooleanField(default=False, help_text="Set by the user; stops following Telegram's.")
    blocked_bot_at = models.DateTimeField(null=True, blank=True, help_text="When the user blocked the bot.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Telegram user"

    def __str__(self) -> str:
        handle = f"@{self.username}" if self.username else self.first_name or "user"
        return f"{handle} ({self.telegram_id})"
