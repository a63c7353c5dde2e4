"""Telegram's send limits, shared by every process of one bot.

Each send reserves a slot before it goes out. A slot is a time at which the
send may happen, found atomically in a shared store:

- per chat: one send per `chat_interval` (1 s; 3 s for groups and channels,
  whose ids are negative), kept as the chat's "next free time";
- per bot: at most `rate` sends per second, kept as a calendar of global
  slots of width 1/rate, each taken by at most one send. A send takes the
  first free global slot at or after the time its chat allows, so a chat with
  a queue does not hold back sends to other chats (a single "next free time"
  for the bot would: one chat waiting 9 s would push every other chat 9 s
  out; see docs/decisions/401-shared-rate-limiter.md). A send goes out at the
  *start* of its slot, never mid-slot, so no two sends are closer than one
  slot and any 31 span at least 30 slots (1.034 s at 29/s): 34 ms of
  lateness to spare before Telegram could count 31 in one second;
- a pause: after Telegram answers 429, nothing is sent before it ends.

Two reasons a send waits, told apart because they call for different
answers (docs/decisions/406-chat-turns-for-deferred-sends.md):

- the bot is at its rate or paused: everyone waits, so the caller sleeps up
  to its `max_wait`; a reservation further out is refused and changes
  nothing, so a task that retries later does not push the queue further out
  on every attempt;
- this chat already has sends ahead: when the chat alone would hold the send
  more than `max_chat_wait`, the reservation is refused with a **promised
  turn**: `turn = max(horizon + chat_interval, chat's next free time)`, and
  the chat's horizon moves to it. Nothing is taken in the calendar. Sends
  refused together come back one chat interval apart, each finding the chat
  free, instead of all at once, re-polling and being refused again.

All times are integer microseconds on the store's clock (Redis `TIME` or the
machine clock for the file store); callers only see the wait relative to that
clock, so process clocks never have to agree.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MICROSECONDS = 1_000_000


@dataclass(frozen=True)
class Reservation:
    """The outcome of one reservation.

    `granted` False means no slot was reserved: the earliest slot is `wait`
    seconds away, more than the caller allowed. `turn` True on a refusal means
    the chat was the reason and `at` is the turn promised to this send: come
    back in `wait` seconds and the chat is free. `at` is the slot's (or the
    turn's) time on the store's clock, in seconds (for tests and logs; use
    `wait` to sleep or to retry).
    """

    granted: bool
    wait: float
    at: float
    turn: bool = False


class SlotStore(Protocol):
    """Atomic slot reservation shared by every process of one bot."""

    async def reserve(
        self, *, chat_key: str, chat_interval: float, max_wait: float, max_chat_wait: float | None = None
    ) -> Reservation:
        """Take the earliest slot for a send to `chat_key`, unless it is more
        than `max_wait` seconds away, or the chat alone holds it more than
        `max_chat_wait` seconds (then promise the send a turn; None: no
        separate limit for the chat)."""
        ...

    async def pause(self, seconds: float) -> None:
        """Let nothing be sent for `seconds` from now (a later pause end wins)."""
        ...

    async def paused_for(self) -> float:
        """Seconds until the current pause ends; 0 when there is none."""
        ...

    async def close(self) -> None: ...


def _to_microseconds(seconds: float) -> int:
    return max(0, math.ceil(seconds * MICROSECONDS))


def _slot_width(rate_per_second: float) -> int:
    """Width of one global slot; rounded up, so the bot never exceeds `rate`."""
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    return math.ceil(MICROSECONDS / rate_per_second)


def _max_chat_wait_microseconds(max_chat_wait: float | None) -> int:
    # No separate limit: a wait the chat causes is judged by `max_wait` alone.
    # 2^52 keeps the number exact in Lua's doubles.
    return 2**52 if max_chat_wait is None else _to_microseconds(max_chat_wait)


def _reservation(granted: bool, wait_us: int, at_us: int, turn: bool = False) -> Reservation:
    return Reservation(granted=granted, wait=wait_us / MICROSECONDS, at=at_us / MICROSECONDS, turn=turn)


# KEYS: chat next-free-time, global slot calendar (sorted set of slot numbers),
# pause end, chat horizon (the last turn promised to a refused send).
# ARGV: chat interval, slot width, max wait, max chat wait - all microseconds.
# Returns {granted, wait, at, turn}.
# Numbers are passed to Redis with %.0f: Lua 5.1 would print 16-digit numbers
# in exponent form and lose precision.
_RESERVE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local width = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local max_chat_wait = tonumber(ARGV[4])
local chat_next = tonumber(redis.call('GET', KEYS[1]) or '0')
local paused_until = tonumber(redis.call('GET', KEYS[3]) or '0')
local held_until = now
if paused_until > held_until then held_until = paused_until end
if chat_next - held_until > max_chat_wait then
  local turn = tonumber(redis.call('GET', KEYS[4]) or '0') + interval
  if chat_next > turn then turn = chat_next end
  local horizon_ttl = math.ceil((turn + interval - now) / 1000) + 1
  redis.call('SET', KEYS[4], string.format('%.0f', turn), 'PX', horizon_ttl)
  return {0, turn - now, turn, 1}
end
local earliest = held_until
if chat_next > earliest then earliest = chat_next end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', math.floor(now / width) - 1))
local slot = math.ceil(earliest / width)
while redis.call('ZSCORE', KEYS[2], string.format('%.0f', slot)) do
  slot = slot + 1
end
local at = slot * width
if at - now > max_wait then
  return {0, at - now, at, 0}
end
local member = string.format('%.0f', slot)
redis.call('ZADD', KEYS[2], member, member)
local calendar_ttl = math.ceil(((slot + 1) * width - now) / 1000) + 1
if redis.call('PTTL', KEYS[2]) < calendar_ttl then
  redis.call('PEXPIRE', KEYS[2], calendar_ttl)
end
local chat_ttl = math.ceil((at + interval - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', at + interval), 'PX', chat_ttl)
return {1, at - now, at, 0}
"""

# KEYS: pause end. ARGV: pause length in microseconds.
_PAUSE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local paused_until = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if paused_until > current then
  redis.call('SET', KEYS[1], string.format('%.0f', paused_until), 'PX', math.ceil((paused_until - now) / 1000) + 1)
end
return 1
"""

# KEYS: pause end. Returns the microseconds left of the pause (0: none).
_PAUSED_FOR_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local left = tonumber(redis.call('GET', KEYS[1]) or '0') - now
if left > 0 then return left end
return 0
"""


class RedisSlotStore:
    """Slots in Redis, for production: one Lua script per reservation.

    The scripts read the clock with Redis `TIME`, so every process on every
    machine measures against one clock; a skewed container clock cannot hand
    out a slot someone else already has. Every key expires once it can no
    longer delay anything. The keys share one hash tag, so the scripts also
    work on a Redis Cluster.
    """

    def __init__(self, client: Any, *, prefix: str, rate_per_second: float) -> None:
        self._client = client
        self._slot_width = _slot_width(rate_per_second)
        tag = "{" + prefix + "}"
        self.key_prefix = tag
        self._calendar_key = f"{tag}:slots"
        self._pause_key = f"{tag}:paused"
        self._reserve = client.register_script(_RESERVE_SCRIPT)
        self._pause = client.register_script(_PAUSE_SCRIPT)
        self._paused_for = client.register_script(_PAUSED_FOR_SCRIPT)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, rate_per_second: float) -> RedisSlotStore:
        import redis.asyncio

        from nanobanana.core.redis_retry import stale_connection_retry

        client = redis.asyncio.Redis.from_url(url, retry=stale_connection_retry())
        return cls(client, prefix=prefix, rate_per_second=rate_per_second)

    async def reserve(
        self, *, chat_key: str, chat_interval: float, max_wait: float, max_chat_wait: float | None = None
    ) -> Reservation:
        granted, wait_us, at_us, turn = await self._reserve(
            keys=[
                f"{self.key_prefix}:chat:{chat_key}",
                self._calendar_key,
                self._pause_key,
                f"{self.key_prefix}:turns:{chat_key}",
            ],
            args=[
                _to_microseconds(chat_interval),
                self._slot_width,
                _to_microseconds(max_wait),
                _max_chat_wait_microseconds(max_chat_wait),
            ],
        )
        return _reservation(bool(granted), int(wait_us), int(at_us), bool(turn))

    async def pause(self, seconds: float) -> None:
        await self._pause(keys=[self._pause_key], args=[_to_microseconds(seconds)])

    async def paused_for(self) -> float:
        return int(await self._paused_for(keys=[self._pause_key])) / MICROSECONDS

    async def close(self) -> None:
        await self._client.aclose()


def _wall_clock_microseconds() -> int:
    return time.time_ns() // 1000


class FileSlotStore:
    """Slots in a small JSON file, for the embedded setup (no Redis).

    Processes on one machine serialise on `fcntl.flock` of a lock file next
    to the state file, and all read the same machine clock. Each call holds
    the lock for a read, a few dict operations and an atomic rename, so it
    runs inline in async code. Chats and slots that can no longer delay
    anything are pruned on every write, so the file stays small.
    """

    def __init__(
        self,
        directory: Path,
        *,
        rate_per_second: float,
        name: str = "telegram-limiter",
        clock: Callable[[], int] = _wall_clock_microseconds,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.state_path = directory / f"{name}.json"
        self._lock_path = directory / f"{name}.lock"
        self._slot_width = _slot_width(rate_per_second)
        self._clock = clock

    async def reserve(
        self, *, chat_key: str, chat_interval: float, max_wait: float, max_chat_wait: float | None = None
    ) -> Reservation:
        interval_us, max_wait_us, width = _to_microseconds(chat_interval), _to_microseconds(max_wait), self._slot_width
        max_chat_wait_us = _max_chat_wait_microseconds(max_chat_wait)
        with self._locked():
            now = self._clock()
            state = self._read(now)
            chats: dict[str, int] = state["chats"]
            slots: set[int] = state["slots"]
            # horizons: chat -> [last promised turn, when it stops mattering]
            horizons: dict[str, list[int]] = state["horizons"]
            chat_next = chats.get(chat_key, 0)
            held_until = max(now, state["paused_until"])
            if chat_next - held_until > max_chat_wait_us:
                horizon = horizons.get(chat_key, [0, 0])[0]
                turn = max(horizon + interval_us, chat_next)
                horizons[chat_key] = [turn, turn + interval_us]
                self._write(state)
                return _reservation(False, turn - now, turn, turn=True)
            earliest = max(held_until, chat_next)
            slot = -(-earliest // width)  # the first slot starting at or after `earliest`
            while slot in slots:
                slot += 1
            at = slot * width
            if at - now > max_wait_us:
                return _reservation(False, at - now, at)
            slots.add(slot)
            chats[chat_key] = at + interval_us
            self._write(state)
        return _reservation(True, at - now, at)

    async def pause(self, seconds: float) -> None:
        with self._locked():
            now = self._clock()
            state = self._read(now)
            state["paused_until"] = max(state["paused_until"], now + _to_microseconds(seconds))
            self._write(state)

    async def paused_for(self) -> float:
        with self._locked():
            now = self._clock()
            return max(0, self._read(now)["paused_until"] - now) / MICROSECONDS

    async def close(self) -> None:
        return None

    def _locked(self) -> _FileLock:
        return _FileLock(self._lock_path)

    def _read(self, now: int) -> dict[str, Any]:
        """The state with everything that cannot delay a send at `now` dropped."""
        try:
            raw = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            # Missing, or cut short by a crash: the worst case is a few sends
            # that go out early and meet a 429, which pauses everyone.
            raw = {}
        current_slot = now // self._slot_width
        return {
            "paused_until": int(raw.get("paused_until", 0)),
            "chats": {key: int(value) for key, value in raw.get("chats", {}).items() if int(value) > now},
            "slots": {int(slot) for slot in raw.get("slots", []) if int(slot) >= current_slot},
            "horizons": {
                key: [int(turn), int(expires)]
                for key, (turn, expires) in raw.get("horizons", {}).items()
                if int(expires) > now
            },
        }

    def _write(self, state: dict[str, Any]) -> None:
        payload = {
            "paused_until": state["paused_until"],
            "chats": state["chats"],
            "slots": sorted(state["slots"]),
            "horizons": state["horizons"],
        }
        temporary = self.state_path.with_name(f"{self.state_path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(payload, separators=(",", ":")))
        os.replace(temporary, self.state_path)


class _FileLock:
    """An exclusive `flock` held for one `with` block."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._descriptor = -1

    def __enter__(self) -> None:
        self._descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._descriptor, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)


def is_group_chat(chat_id: int | str) -> bool:
    """Groups, supergroups and channels have negative ids; `@name` ids are channels."""
    if isinstance(chat_id, str):
        if chat_id.lstrip("-").isdigit():
            return chat_id.startswith("-")
        return True
    return chat_id < 0


class TelegramLimiter:
    """Telegram's per-chat and per-group spacing over a shared `SlotStore`."""

    def __init__(self, store: SlotStore, *, chat_interval: float, group_interval: float) -> None:
        self.store = store
        self.chat_interval = chat_interval
        self.group_interval = group_interval

    async def reserve(self, chat_id: int | str, *, max_wait: float, max_chat_wait: float | None = None) -> Reservation:
        """Reserve the next slot for a send to `chat_id`, unless it is more
        than `max_wait` seconds away or the chat alone holds it more than
        `max_chat_wait` seconds (then the refusal carries the send's turn).

        `max_chat_wait` is for a private chat; a group's is scaled by its
        longer interval, so both allow the same number of sends ahead (one
        send ahead in a group is a 3 s wait)."""
        group = is_group_chat(chat_id)
        interval = self.group_interval if group else self.chat_interval
        if group and max_chat_wait is not None and self.chat_interval > 0:
            max_chat_wait = max_chat_wait * self.group_interval / self.chat_interval
        return await self.store.reserve(
            chat_key=str(chat_id), chat_interval=interval, max_wait=max_wait, max_chat_wait=max_chat_wait
        )

    async def pause(self, seconds: float) -> None:
        """Hold every send of the bot, in every process, for `seconds` (Telegram said 429)."""
        await self.store.pause(seconds)

    async def paused_for(self) -> float:
        """Seconds until the bot's current 429 pause ends; 0 when there is none."""
        return await self.store.paused_for()

    async def close(self) -> None:
        await self.store.close()


def limiter_from_settings() -> TelegramLimiter:
    """Redis when `REDIS_URL` is set, otherwise a file in `DATA_DIR`.

    State is kept per bot (the token's public numeric id), so staging and
    production bots sharing one Redis do not slow each other down.
    """
    from django.conf import settings

    bot_id = str(settings.TELEGRAM_BOT_TOKEN).split(":", 1)[0] or "bot"
    rate = float(settings.TELEGRAM_RATE_PER_SECOND)
    store: SlotStore
    if settings.REDIS_URL:
        store = RedisSlotStore.from_url(
            settings.REDIS_URL, prefix=f"nanobanana:tg-limit:{bot_id}", rate_per_second=rate
        )
    else:
        store = FileSlotStore(Path(settings.DATA_DIR), rate_per_second=rate, name=f"telegram-limiter-{bot_id}")
    return TelegramLimiter(
        store,
        chat_interval=float(settings.TELEGRAM_CHAT_INTERVAL_SECONDS),
        group_interval=float(settings.TELEGRAM_GROUP_INTERVAL_SECONDS),
    )
