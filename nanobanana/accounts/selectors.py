from __future__ import annotations

from nanobanana.accounts.models import TelegramUser


def user_by_telegram_id(*, telegram_id: int) -> TelegramUser | None:
    return TelegramUser.objects.filter(telegram_id=telegram_id).first()
