"""The shared Telegram limiter: both stores must behave the same."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import multiprocessing
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import redis.asyncio

from nanobanana.bot.limiter import (
    MICROSECONDS,
    FileSlotStore,
    RedisSlotStore,
    Reservation,
    SlotStore,
    TelegramLimiter,
    is_group_chat,
    limiter_from_settings,
)

REDIS_URL = "redis://127.0.0.1:6379/15"
EPSILON = 1e-6
NO_LIMIT = 10_000.0
STORE_KINDS = ["redis", "file"]


@dataclass(frozen=True)
class StoreSpec:
    """Enough to open the same shared store again, in this or another process."""

    kind: str
    location: str  # Redis key prefix or state directory

    def open(self, *, rate_per_second: float) -> SlotStore:
        if self.kind == "redis":
            return RedisSlotStore.from_url(REDIS_URL, prefix=self.location, rate_per_second=rate_per_second)
        return FileSlotStore(Path(self.location), rate_per_second=rate_per_second)


def _delete_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=STORE_KINDS)
def store_spec(request, tmp_path) -> Iterator[StoreSpec]:
    if request.param == "redis":
        prefix = f"test-limiter-{uuid.uuid4().hex}"
        yield StoreSpec("redis", prefix)
        _delete_redis_prefix(prefix)
    else:
        yield StoreSpec("file", str(tmp_path / "limiter"))


@pytest.fixture
async def open_store(store_spec) -> AsyncIterator[Callable[..., SlotStore]]:
    opened: list[SlotStore] = []

    def _open(*, rate_per_second: float = 1000.0) -> SlotStore:
        store = store_spec.open(rate_per_second=rate_per_second)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        await store.close()


def _kept(spec: StoreSpec, what: str) -> set[str]:
    """Chats the store still keeps state of `what` for: "chat" (next free
    time) or "turns" (a promised-turn horizon)."""
    if spec.kind == "redis":
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            return {key.rsplit(":", 1)[1] for key in client.scan_iter(match="{" + spec.location + "}:" + what + ":*")}
        finally:
            client.close()
    state = json.loads((Path(spec.location) / "telegram-limiter.json").read_text())
    return set(state.get({"chat": "chats", "turns": "horizons"}[what], {}))


def _slot_number(reservation: Reservation, rate_per_second: float) -> int:
    width = math.ceil(MICROSECONDS / rate_per_second)
    return round(reservation.at * MICROSECONDS) // width


async def test_sends_to_one_chat_are_spaced_by_the_chat_interval(open_store):
    store = open_store()
    reservations = [await store.reserve(chat_key="1", chat_interval=1.0, max_wait=NO_LIMIT) for _ in range(3)]

    assert all(reservation.granted for reservation in reservations)
    assert reservations[1].at - reservations[0].at == pytest.approx(1.0, abs=EPSILON)
    assert reservations[2].at - reservations[1].at == pytest.approx(1.0, abs=EPSILON)
    assert reservations[0].wait < 0.05
    assert reservations[2].wait == pytest.approx(2.0, abs=0.05)


async def test_sends_to_many_chats_take_one_global_slot_each(open_store):
    rate = 10.0
    store = open_store(rate_per_second=rate)
    reservations = [await store.reserve(chat_key=str(chat), chat_interval=1.0, max_wait=NO_LIMIT) for chat in range(25)]

    slots = sorted(_slot_number(reservation, rate) for reservation in reservations)
    assert slots == list(range(slots[0], slots[0] + 25)), "every send has its own slot of width 1/rate"
    times = sorted(reservation.at for reservation in reservations)
    for start in times:
        in_one_second = [time for time in times if start <= time < start + 1.0]
        assert len(in_one_second) <= rate + 1
    assert times[-1] - times[0] >= 23 / rate


async def test_a_chat_with_a_queue_does_not_hold_back_other_chats(open_store):
    store = open_store(rate_per_second=30.0)
    for _ in range(5):
        await store.reserve(chat_key="busy", chat_interval=1.0, max_wait=NO_LIMIT)

    other = await store.reserve(chat_key="idle", chat_interval=1.0, max_wait=NO_LIMIT)

    assert other.granted
    assert other.wait < 0.2


async def test_sends_go_out_at_slot_starts_so_no_two_are_closer_than_a_slot(open_store):
    """A send whose chat frees mid-slot waits for the next slot start: otherwise it
    could leave just before the next slot's send, and 31 sends could fit in
    29 slot widths, a hair over one second at 29/s (the sandbox drew 429s)."""
    rate = 10.0
    width = 1 / rate
    store = open_store(rate_per_second=rate)
    reservations = [
        await store.reserve(chat_key=str(index % 3), chat_interval=0.05, max_wait=NO_LIMIT) for index in range(12)
    ]

    times = sorted(reservation.at for reservation in reservations)
    for earlier, later in itertools.pairwise(times):
        assert later - earlier >= width - EPSILON
    assert all(abs(at / width - round(at / width)) < 1e-4 for at in times), "each at a slot start"


async def test_group_and_channel_chats_use_the_group_interval(open_store):
    limiter = TelegramLimiter(open_store(), chat_interval=1.0, group_interval=3.0)

    cases: list[tuple[int | str, float]] = [(-100123, 3.0), ("@channel", 3.0), (42, 1.0), ("42", 1.0)]
    for chat_id, interval in cases:
        first = await limiter.reserve(chat_id, max_wait=NO_LIMIT)
        second = await limiter.reserve(chat_id, max_wait=NO_LIMIT)
        assert second.at - first.at == pytest.approx(interval, abs=EPSILON), chat_id


def test_only_negative_ids_and_usernames_are_groups():
    assert is_group_chat(-1)
    assert is_group_chat("-1001")
    assert is_group_chat("@news")
    assert not is_group_chat(1)
    assert not is_group_chat("1")


async def test_pause_delays_every_chat(open_store):
    store = open_store()
    before = await store.reserve(chat_key="a", chat_interval=0.01, max_wait=NO_LIMIT)
    await store.pause(2.0)

    after = [await store.reserve(chat_key=chat, chat_interval=0.01, max_wait=NO_LIMIT) for chat in ("a", "b", "c")]

    for reservation in after:
        assert reservation.at >= before.at + 2.0 - 0.05
        assert 0 < reservation.wait <= 2.0 + 0.05  # less when the machine is slow between the calls


async def test_paused_for_tells_how_long_the_pause_still_holds(open_store):
    store = open_store()
    assert await store.paused_for() == 0
    await store.pause(3.0)

    left = await store.paused_for()

    assert 3.0 - 0.1 < left <= 3.0


async def test_a_shorter_pause_does_not_cut_a_longer_one(open_store):
    store = open_store()
    await store.pause(5.0)
    await store.pause(1.0)

    reservation = await store.reserve(chat_key="a", chat_interval=1.0, max_wait=NO_LIMIT)

    assert reservation.wait == pytest.approx(5.0, abs=0.05)


async def test_a_reservation_beyond_max_wait_is_refused_and_takes_nothing(open_store):
    store = open_store()
    first = await store.reserve(chat_key="a", chat_interval=1.0, max_wait=NO_LIMIT)

    refused = await store.reserve(chat_key="a", chat_interval=1.0, max_wait=0.5)
    granted = await store.reserve(chat_key="a", chat_interval=1.0, max_wait=NO_LIMIT)

    assert not refused.granted
    assert refused.wait == pytest.approx(1.0, abs=0.05)
    assert granted.granted
    assert granted.at - first.at == pytest.approx(1.0, abs=EPSILON), "the refused attempt kept no slot"


async def test_state_is_dropped_once_it_cannot_delay_a_send(open_store, store_spec):
    store = open_store()
    await store.reserve(chat_key="old", chat_interval=0.05, max_wait=NO_LIMIT)
    await store.pause(0.05)
    assert "old" in _kept(store_spec, "chat")

    await asyncio.sleep(0.15)
    fresh = await store.reserve(chat_key="new", chat_interval=0.05, max_wait=NO_LIMIT)

    assert fresh.wait < 0.05, "the expired pause no longer applies"
    assert _kept(store_spec, "chat") == {"new"}


@pytest.mark.parametrize("store_spec", ["redis"], indirect=True)
async def test_every_redis_key_expires_when_it_stops_mattering(open_store, store_spec):
    store = open_store(rate_per_second=1.0)
    await store.pause(3.0)
    # The first slot starting after the pause: 3 to 4 s out; the chat is free 2 s later.
    reservation = await store.reserve(chat_key="a", chat_interval=2.0, max_wait=NO_LIMIT)
    slot_ms = reservation.wait * 1000

    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        ttls = {
            key.rsplit("}:", 1)[1]: await client.pttl(key)
            async for key in client.scan_iter(match="{" + store_spec.location + "}*")
        }
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose()
    assert set(ttls) == {"paused", "slots", "chat:a"}
    assert 2900 < ttls["paused"] <= 3001
    assert slot_ms + 900 < ttls["slots"] <= slot_ms + 1002, "until the end of the last slot (width 1 s)"
    assert slot_ms + 1900 < ttls["chat:a"] <= slot_ms + 2002


async def test_file_store_recovers_from_a_damaged_state_file(tmp_path):
    store = FileSlotStore(tmp_path, rate_per_second=30.0)
    store.state_path.write_text('{"chats": {"a": 9')

    reservation = await store.reserve(chat_key="a", chat_interval=1.0, max_wait=NO_LIMIT)

    assert reservation.granted
    assert reservation.wait < 0.05


def _reserve_in_child(spec: StoreSpec, chat_keys: list[str], rate: float, results) -> None:
    async def run() -> list[float]:
        store = spec.open(rate_per_second=rate)
        try:
            return [
                (await store.reserve(chat_key=chat_key, chat_interval=1.0, max_wait=NO_LIMIT)).at
                for chat_key in chat_keys
            ]
        finally:
            await store.close()

    results.put(asyncio.run(run()))


def _reserve_in_processes(spec: StoreSpec, chat_keys_per_process: list[list[str]], rate: float) -> list[float]:
    # fork: the test module is not importable by name in a spawned child.
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [
        context.Process(target=_reserve_in_child, args=(spec, chat_keys, rate, results))
        for chat_keys in chat_keys_per_process
    ]
    for process in processes:
        process.start()
    times = [time for _ in processes for time in results.get(timeout=60)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return times


def test_processes_reserving_for_one_chat_never_share_a_slot(store_spec):
    times = sorted(_reserve_in_processes(store_spec, [["same-chat"] * 50 for _ in range(4)], rate=30.0))

    assert len(times) == 200
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 - EPSILON


def test_processes_reserving_for_many_chats_never_share_a_global_slot(store_spec):
    rate = 1000.0
    chats = [[f"chat-{process}-{index}" for index in range(50)] for process in range(4)]

    times = _reserve_in_processes(store_spec, chats, rate=rate)

    slots = [_slot_number(Reservation(granted=True, wait=0.0, at=time), rate) for time in times]
    assert len(set(slots)) == 200


def test_factory_uses_redis_when_redis_url_is_set(settings):
    settings.REDIS_URL = REDIS_URL

    limiter = limiter_from_settings()

    assert isinstance(limiter.store, RedisSlotStore)
    assert limiter.chat_interval == settings.TELEGRAM_CHAT_INTERVAL_SECONDS
    assert limiter.group_interval == settings.TELEGRAM_GROUP_INTERVAL_SECONDS
    asyncio.run(limiter.close())


def test_factory_uses_a_file_in_data_dir_without_redis(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path

    limiter = limiter_from_settings()

    assert isinstance(limiter.store, FileSlotStore)
    assert limiter.store.state_path.parent == tmp_path


async def test_a_chat_wait_over_the_chat_limit_is_refused_with_a_turn_and_takes_no_global_slot(open_store):
    rate = 1.0  # slots one second wide: which slot each send took is plain to see
    store = open_store(rate_per_second=rate)
    first = await store.reserve(chat_key="busy", chat_interval=1.0, max_wait=NO_LIMIT)
    second = await store.reserve(chat_key="busy", chat_interval=1.0, max_wait=NO_LIMIT)

    refused = await store.reserve(chat_key="busy", chat_interval=1.0, max_wait=NO_LIMIT, max_chat_wait=1.0)
    other = await store.reserve(chat_key="idle", chat_interval=1.0, max_wait=NO_LIMIT)

    assert not refused.granted, "two sends ahead in the chat: over the chat limit even with no global limit"
    assert refused.turn
    assert refused.at - first.at == pytest.approx(2.0, abs=EPSILON), "its turn is when the chat is next free"
    assert 2.0 - 0.05 < refused.wait <= 3.0 + EPSILON, "two seconds after the first slot, which starts within 1 s"
    assert _slot_number(second, rate) == _slot_number(first, rate) + 1
    assert _slot_number(other, rate) == _slot_number(first, rate) + 2, "the refused send left its slot free"


async def test_a_wait_for_the_bot_is_not_judged_by_the_chat_limit(open_store):
    rate = 10.0
    store = open_store(rate_per_second=rate)
    for chat in range(20):  # the bot's next two seconds are taken
        await store.reserve(chat_key=str(chat), chat_interval=1.0, max_wait=NO_LIMIT)

    waiting = await store.reserve(chat_key="fresh", chat_interval=1.0, max_wait=NO_LIMIT, max_chat_wait=0.0)

    assert waiting.granted, "the chat has nothing ahead: only max_wait applies"
    assert not waiting.turn
    assert waiting.wait > 1.5


async def test_sends_refused_for_one_chat_get_turns_one_interval_apart(open_store):
    store = open_store()
    first = await store.reserve(chat_key="busy", chat_interval=1.0, max_wait=NO_LIMIT)

    refused = [
        await store.reserve(chat_key="busy", chat_interval=1.0, max_wait=NO_LIMIT, max_chat_wait=0.5) for _ in range(4)
    ]

    assert not any(reservation.granted for reservation in refused)
    assert all(reservation.turn for reservation in refused)
    turns = [reservation.at - first.at for reservation in refused]
    assert turns == pytest.approx([1.0, 2.0, 3.0, 4.0], abs=EPSILON), "not all at the chat's next free time"
    again = await store.reserve(chat_key="busy", chat_interval=1.0, max_wait=NO_LIMIT)
    assert again.granted
    assert again.at - first.at == pytest.approx(1.0, abs=EPSILON), "promising turns took no chat slot"


async def test_sends_back_at_their_turns_are_granted_within_the_chat_limit(open_store):
    interval = 0.1
    store = open_store()
    loop = asyncio.get_running_loop()
    for _ in range(5):  # five sends ahead: the chat is busy for half a second
        await store.reserve(chat_key="busy", chat_interval=interval, max_wait=NO_LIMIT)
    comeback: list[float] = []
    for _ in range(3):
        refused = await store.reserve(
            chat_key="busy", chat_interval=interval, max_wait=NO_LIMIT, max_chat_wait=interval
        )
        assert refused.turn
        comeback.append(loop.time() + refused.wait)  # the store's turn, or later

    for moment in comeback:
        await asyncio.sleep(max(0.0, moment - loop.time()))
        back = await store.reserve(chat_key="busy", chat_interval=interval, max_wait=NO_LIMIT, max_chat_wait=interval)
        assert back.granted, "the chat is free at the turn it promised"
        assert back.wait <= interval + 0.01


async def test_a_promised_turn_is_dropped_once_it_cannot_delay_a_send(open_store, store_spec):
    store = open_store()
    await store.reserve(chat_key="old", chat_interval=0.05, max_wait=NO_LIMIT)
    refused = await store.reserve(chat_key="old", chat_interval=0.05, max_wait=NO_LIMIT, max_chat_wait=0.0)
    assert refused.turn
    assert _kept(store_spec, "turns") == {"old"}

    await asyncio.sleep(0.2)
    await store.reserve(chat_key="new", chat_interval=0.05, max_wait=NO_LIMIT)

    assert _kept(store_spec, "turns") == set()


@pytest.mark.parametrize("store_spec", ["redis"], indirect=True)
async def test_a_redis_turn_key_expires_one_interval_after_its_turn(open_store, store_spec):
    store = open_store()
    await store.reserve(chat_key="a", chat_interval=2.0, max_wait=NO_LIMIT)  # chat free at +2 s
    await store.reserve(chat_key="a", chat_interval=2.0, max_wait=NO_LIMIT, max_chat_wait=0.0)  # turn at +2 s

    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        ttl = await client.pttl("{" + store_spec.location + "}:turns:a")
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose()
    assert 3900 < ttl <= 4001, "until one interval after the last promised turn"


async def test_a_group_may_have_as_many_sends_ahead_as_a_private_chat(open_store):
    limiter = TelegramLimiter(open_store(), chat_interval=1.0, group_interval=3.0)
    await limiter.reserve(-100, max_wait=NO_LIMIT)
    await limiter.reserve(7, max_wait=NO_LIMIT)

    # One interval, plus the few ms until the first send's slot starts.
    group = await limiter.reserve(-100, max_wait=NO_LIMIT, max_chat_wait=1.05)
    private = await limiter.reserve(7, max_wait=NO_LIMIT, max_chat_wait=1.05)
    refused = await limiter.reserve(-100, max_wait=NO_LIMIT, max_chat_wait=1.05)

    assert group.granted, "one send ahead in a group is a 3 s wait: still one send ahead"
    assert private.granted
    assert not refused.granted
    assert refused.turn


async def test_a_redis_connection_dropped_meanwhile_costs_no_send():
    """After a Redis restart a pooled connection fails its next command once;
    the reservation is made again on a new connection (see test_fsm.py)."""
    prefix = f"test-stale-{secrets.token_hex(4)}"
    store = RedisSlotStore.from_url(REDIS_URL, prefix=prefix, rate_per_second=NO_LIMIT)
    try:
        await store.reserve(chat_key="1", chat_interval=0.0, max_wait=NO_LIMIT)
        killer = redis.Redis.from_url(REDIS_URL)
        try:
            assert killer.client_kill_filter(_id=await store._client.client_id()) == 1
        finally:
            killer.close()
        assert (await store.reserve(chat_key="2", chat_interval=0.0, max_wait=NO_LIMIT)).granted
    finally:
        _delete_redis_prefix(prefix)
