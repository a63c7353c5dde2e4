"""aiogram FSM storage in the database, for setups without Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StateType, StorageKey
from asgiref.sync import sync_to_async

from nanobanana.bot.models import FsmRecord


class DatabaseStorage(BaseStorage):
    """Same semantics as aiogram's RedisStorage, one row per key."""

    def __init__(self) -> None:
        self.key_builder = DefaultKeyBuilder(with_bot_id=True, with_destiny=True)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await sync_to_async(_upsert)(self._key(key), state=value or "")

    async def get_state(self, key: StorageKey) -> str | None:
        record = await FsmRecord.objects.filter(key=self._key(key)).only("state").afirst()
        return record.state or None if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await sync_to_async(_upsert)(self._key(key), data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await FsmRecord.objects.filter(key=self._key(key)).only("data").afirst()
        return dict(record.data) if record else {}

    async def close(self) -> None:
        return None


def _upsert(key: str, **fields: Any) -> None:
    FsmRecord.objects.update_or_create(key=key, defaults=fields)
