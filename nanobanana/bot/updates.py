"""Handling stored updates: claim them, feed them to the dispatcher, record
each outcome."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.types import Update
from django.db import DatabaseError

from nanobanana.bot.inbox import inbox_claim, inbox_fail, inbox_finish, inbox_retry_later
from nanobanana.bot.models import InboxUpdate
from nanobanana.bot.runtime import bot_run
from nanobanana.core.errors import REDIS_OUTAGE, TransientError

logger = logging.getLogger(__name__)
# Failures that pass: the update goes back to the inbox for another try.
RETRYABLE: tuple[type[Exception], ...] = (TransientError, DatabaseError, *REDIS_OUTAGE)


async def _feed(bot: Bot, dispatcher: Dispatcher, update: Update) -> Any:
    # Not `feed_raw_update`: it logs every exception at ERROR with its
    # traceback and re-raises, so each retried Telegram hiccup or Redis blip
    # read as an error. The outcome is logged once, below, at its level.
    return await dispatcher.feed_update(bot, update)


def update_handle(*, update_id: int) -> str:
    """Returns what happened: skipped, done, retry or failed."""
    return updates_handle(update_ids=[update_id])[0]


def updates_handle(*, update_ids: Sequence[int]) -> list[str]:
    """Handle stored updates in one run of the bot's loop: what happened to
    each, in order (skipped, done, retry or failed).

    The updates of one person (or chat) are fed one after another, in
    `update_id` order, so their second tap sees what the first one did; the
    others overlap (while one handler waits for Telegram, the next runs).
    Each is claimed first, and each outcome is recorded on its own: one
    failing update does not fail the rest."""
    rows = [(update_id, inbox_claim(update_id=update_id)) for update_id in update_ids]
    claimed = [row for _, row in rows if row is not None]
    errors: dict[int, BaseException | None] = {}
    if claimed:
        try:
            errors = bot_run(lambda bot, dispatcher: _feed_all(bot, dispatcher, claimed))
        except Exception as error:  # the run itself failed: each claimed update shares its fate
            errors = dict.fromkeys((row.update_id for row in claimed), error)
    return [_record(update_id, errors[update_id]) if row is not None else "skipped" for update_id, row in rows]


async def _feed_all(bot: Bot, dispatcher: Dispatcher, rows: list[InboxUpdate]) -> dict[int, BaseException | None]:
    """Feed every row, one sender's in order; each row's error, or None (a
    payload that is not an update fails alone, before anything is fed)."""
    errors: dict[int, BaseException | None] = {}
    senders: dict[tuple[str, int], list[Update]] = defaultdict(list)
    for row in sorted(rows, key=lambda row: row.update_id):
        try:
            update = Update.model_validate(row.payload, context={"bot": bot})
        except Exception as error:  # judged by `_record`
            errors[row.update_id] = error
            continue
        senders[_sender_of(update)].append(update)

    async def in_order(queue: list[Update]) -> None:
        for update in queue:
            try:
                await _feed(bot, dispatcher, update)
            except Exception as error:  # judged by `_record`
                errors[update.update_id] = error
            else:
                errors[update.update_id] = None

    await asyncio.gather(*(in_order(queue) for queue in senders.values()))
    return errors


def _sender_of(update: Update) -> tuple[str, int]:
    """Who an update comes from, as aiogram's user context (and so the
    per-person lock of decision 007) reads it: the user, else the chat; an
    update with neither is on its own."""
    context = UserContextMiddleware.resolve_event_context(update)
    if context.user_id is not None:
        return ("user", context.user_id)
    if context.chat_id is not None:
        return ("chat", context.chat_id)
    return ("update", update.update_id)


def _record(update_id: int, error: BaseException | None) -> str:
    if error is None:
        inbox_finish(update_id=update_id)
        return "done"
    if isinstance(error, RETRYABLE):
        logger.warning("update will be retried", extra={"update_id": update_id, "error": str(error)})
        inbox_retry_later(update_id=update_id, error=f"{type(error).__name__}: {error}")
        return "retry"
    logger.error("update failed", extra={"update_id": update_id}, exc_info=error)
    inbox_fail(update_id=update_id, error=f"{type(error).__name__}: {error}")
    return "failed"
