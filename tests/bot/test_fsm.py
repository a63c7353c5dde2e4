"""FSM storage: drafts are kept per bot, chat and user, in Redis or the database."""

from __future__ import annotations

import secrets

import pytest
import redis
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from asgiref.sync import sync_to_async
from django.db import connections

from nanobanana.bot.dispatcher import storage_from_settings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["redis", "database"])
def storage(request, settings):
    settings.BOT_FSM_STORAGE = request.param
    return storage_from_settings()


async def test_two_bots_sharing_a_store_do_not_see_each_others_drafts(storage):
    user = secrets.randbelow(10**9)
    production = StorageKey(bot_id=1_000_000_001, chat_id=user, user_id=user)
    staging = StorageKey(bot_id=1_000_000_002, chat_id=user, user_id=user)
    await storage.set_state(production, "CreateImage:prompt")
    await storage.set_data(production, {"model": "local-fast"})
    try:
        assert await storage.get_state(staging) is None
        assert await storage.get_data(staging) == {}
        assert await storage.get_state(production) == "CreateImage:prompt"
        assert await storage.get_data(production) == {"model": "local-fast"}
    finally:
        await storage.set_state(production, None)
        await storage.set_data(production, {})
        await storage.close()
        await sync_to_async(connections.close_all)()  # the database storage's executor thread


async def test_a_connection_redis_dropped_meanwhile_costs_no_failure(settings):
    """Found by the fault suite: after Redis restarted, every pooled
    connection failed its next command once ("Connection lost"), and each
    update that drew one was handled again later."""
    settings.BOT_FSM_STORAGE = "redis"
    storage = storage_from_settings()
    assert isinstance(storage, RedisStorage)
    user = secrets.randbelow(10**9)
    key = StorageKey(bot_id=1_000_000_003, chat_id=user, user_id=user)
    try:
        await storage.set_state(key, "CreateImage:prompt")
        connection_id = await storage.redis.client_id()
        killer = redis.Redis.from_url(settings.REDIS_URL)
        try:
            assert killer.client_kill_filter(_id=connection_id) == 1
        finally:
            killer.close()
        assert await storage.get_state(key) == "CreateImage:prompt"
    finally:
        await storage.set_state(key, None)
        await storage.close()
