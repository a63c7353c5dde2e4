"""Update middleware: every handler gets the user, their texts and language."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from asgiref.sync import sync_to_async

from nanobanana.accounts.services import TelegramProfile, user_ensure
from nanobanana.bot.texts import Texts

logger = logging.getLogger(__name__)


class UserMiddleware(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        telegram_user: User | None = data.get("event_from_user")
        if telegram_user is not None and not telegram_user.is_bot:
            profile = TelegramProfile(
                telegram_id=telegram_user.id,
                username=telegram_user.username or "",
                first_name=telegram_user.first_name or "",
                last_name=telegram_user.last_name or "",
                language_code=telegram_user.language_code or "",
            )
            user, created = await sync_to_async(user_ensure)(profile=profile)
            data["user"] = user
            data["user_created"] = created
            data["texts"] = Texts(user.language)
            return await handler(event, data)
        # No person behind it (a channel post, an anonymous group admin,
        # another bot): every handler serves a user, and without one
        # `/start` in a channel crashed with "missing argument 'user'"
        # (found by the fault suite's generated updates). Skip it.
        logger.info("update without a human sender skipped")
        return None
