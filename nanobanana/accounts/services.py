"""Writes for Telegram users."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from nanobanana.accounts.models import Language, TelegramUser
from nanobanana.core import clock


@dataclass(frozen=True)
class TelegramProfile:
    """What Telegram tells us about a user in every update."""

    telegram_id: int
    username: str = ""
    first_name: str = ""
    last_name: str = ""
    language_code: str = ""


def language_from_code(language_code: str) -> str:
    """Russian by default; English for anyone whose Telegram is not Russian-like."""
    code = (language_code or "").lower().split("-")[0]
    if not code or code in {"ru", "uk", "be", "kk", "uz", "ky", "tg", "hy", "az"}:
        return Language.RU
    return Language.EN


def user_ensure(*, profile: TelegramProfile) -> tuple[TelegramUser, bool]:
    """Create or refresh the user; returns (user, created). Safe under races."""
    defaults = {
        "username": profile.username[:64],
        "first_name": profile.first_name[:128],
        "last_name": profile.last_name[:128],
        "language_code": profile.language_code[:16],
    }
    user = TelegramUser.objects.filter(telegram_id=profile.telegram_id).first()
    if user is None:
        try:
            with transaction.atomic():
                user = TelegramUser.objects.create(
                    telegram_id=profile.telegram_id,
                    language=language_from_code(profile.language_code),
                    **defaults,
                )
            return user, True
        except IntegrityError:
            user = TelegramUser.objects.get(telegram_id=profile.telegram_id)
    changed: dict[str, object] = {key: value for key, value in defaults.items() if getattr(user, key) != value}
    if user.blocked_bot_at is not None:
        changed["blocked_bot_at"] = None
    if not user.language_chosen and user.language != language_from_code(profile.language_code):
        changed["language"] = language_from_code(profile.language_code)
    if changed:
        for key, value in changed.items():
            setattr(user, key, value)
        user.save(update_fields=[*changed, "last_seen_at"])
    return user, False


def user_set_language(*, user: TelegramUser, language: str) -> TelegramUser:
    if language not in Language.values:
        from nanobanana.core.errors import ValidationError

        raise ValidationError(f"unknown language {language!r}")
    TelegramUser.objects.filter(pk=user.pk).update(language=language, language_chosen=True)
    user.language, user.language_chosen = language, True
    return user


def user_mark_blocked(*, telegram_id: int) -> None:
    """The user blocked the bot: a user state, not an error."""
    TelegramUser.objects.filter(telegram_id=telegram_id, blocked_bot_at__isnull=True).update(blocked_bot_at=clock.now())
