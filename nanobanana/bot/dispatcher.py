"""Builds the aiogram dispatcher: storage, middlewares and routers, in one place."""

from __future__ import annotations

from functools import cache

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from django.conf import settings

from nanobanana.bot.fsm import DatabaseStorage
from nanobanana.bot.handlers import balance, create, errors, fallback, history, payments, preferences, start
from nanobanana.bot.isolation import isolation_for
from nanobanana.bot.middlewares import UserMiddleware
from nanobanana.core.redis_retry import stale_connection_retry


def storage_from_settings() -> BaseStorage:
    if settings.BOT_FSM_STORAGE == "redis":
        from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage

        return RedisStorage.from_url(
            settings.REDIS_URL,
            connection_kwargs={"retry": stale_connection_retry()},
            # The bot id in the key: staging and production bots (or parallel
            # test runs) sharing one Redis must not see each other's drafts.
            key_builder=DefaultKeyBuilder(prefix="nanobanana:fsm", with_bot_id=True, with_destiny=True),
            state_ttl=24 * 3600,
            data_ttl=24 * 3600,
        )
    return DatabaseStorage()


@cache
def build_dispatcher() -> Dispatcher:
    """The process's dispatcher. Routers are module singletons and can join
    only one dispatcher, so there is exactly one, built on first use."""
    storage = storage_from_settings()
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation_for(storage))
    dispatcher.update.outer_middleware(UserMiddleware())
    dispatcher.callback_query.middleware(CallbackAnswerMiddleware())
    dispatcher.include_routers(
        errors.router,
        start.router,
        balance.router,
        payments.router,  # before create: its promo-code input state takes text first
        history.router,
        preferences.router,
        create.router,
        fallback.router,  # last: takes whatever nobody else did
    )
    return dispatcher


def used_update_types() -> list[str]:
    """The update types the bot handles, for setWebhook's allowed_updates."""
    return sorted(build_dispatcher().resolve_used_update_types())
