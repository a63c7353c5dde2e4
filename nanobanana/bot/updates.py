"""Handling one stored update: claim it, feed it to the dispatcher, record
the outcome."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from django.db import DatabaseError

from nanobanana.bot.inbox import inbox_claim, inbox_fail, inbox_finish, inbox_retry_later
from nanobanana.bot.runtime import bot_run
from nanobanana.core.errors import REDIS_OUTAGE, TransientError

logger = logging.getLogger(__name__)
# Failures that pass: the update goes back to the inbox for another try.
RETRYABLE: tuple[type[Exception], ...] = (TransientError, DatabaseError, *REDIS_OUTAGE)


async def _feed(bot: Bot, dispatcher: Dispatcher, payload: dict[str, Any]) -> Any:
    # Not `feed_raw_update`: it logs every exception at ERROR with its
    # traceback and re-raises, so each retried Telegram hiccup or Redis blip
    # read as an error. The outcome is logged once, below, at its level.
    return await dispatcher.feed_update(bot, Update.model_validate(payload, context={"bot": bot}))


def update_handle(*, update_id: int) -> str:
    """Returns what happened: skipped, done, retry or failed."""
    row = inbox_claim(update_id=update_id)
    if row is None:
        return "skipped"
    payload = row.payload
    try:
        bot_run(lambda bot, dispatcher: _feed(bot, dispatcher, payload))
    except RETRYABLE as error:
        logger.warning("update will be retried", extra={"update_id": update_id, "error": str(error)})
        inbox_retry_later(update_id=update_id, error=f"{type(error).__name__}: {error}")
        return "retry"
    except Exception as error:
        logger.exception("update failed", extra={"update_id": update_id})
        inbox_fail(update_id=update_id, error=f"{type(error).__name__}: {error}")
        return "failed"
    inbox_finish(update_id=update_id)
    return "done"
