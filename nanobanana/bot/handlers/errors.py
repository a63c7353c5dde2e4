"""The bot's error edge: map failures to a user answer once.

Transient failures (database, Redis, Telegram busy) propagate so the
update is handled again later; everything else is logged and the user gets
a calm message instead of silence or a stack trace."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import ErrorEvent
from django.db import DatabaseError

from nanobanana.accounts.services import language_from_code
from nanobanana.bot.sender import RecipientBlocked
from nanobanana.bot.texts import Texts
from nanobanana.core.errors import REDIS_OUTAGE, TransientError

router = Router(name=__name__)
logger = logging.getLogger(__name__)
# Telegram's description when answerCallbackQuery comes too late.
_STALE_QUERY = "query is too old"


@router.error()
async def on_error(event: ErrorEvent, bot: Bot) -> None:
    error = event.exception
    if isinstance(error, (TransientError, DatabaseError, *REDIS_OUTAGE)):
        raise error
    if isinstance(error, RecipientBlocked):
        return
    if isinstance(error, TelegramBadRequest) and _STALE_QUERY in error.message.lower():
        # A button pressed long ago (the update waited out an outage, or was
        # redelivered): Telegram no longer takes an answer. Nothing is wrong
        # with the update, and "something went wrong" would be untrue.
        logger.info("stale callback query not answered", extra={"update_id": event.update.update_id})
        return
    logger.error("handler failed", exc_info=error, extra={"update_id": event.update.update_id})
    user = getattr(event.update.event, "from_user", None)
    if user is None:
        return
    texts = Texts(language_from_code(user.language_code or ""))
    try:
        await bot.send_message(user.id, texts("error.generic"))
    except Exception:
        logger.warning("could not tell the user about an error", extra={"user_id": user.id})
