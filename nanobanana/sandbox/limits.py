"""Telegram's flood limits, as the Bot API FAQ describes them.

About 30 messages per second per bot, about one per second per private chat
(short bursts tolerated), 20 per minute per group. Exceeding one answers 429
with `retry_after`, and while that penalty lasts every call of the bot fails.
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Window:
    """At most `count` messages in any `seconds` long sliding window."""

    count: int
    seconds: float


@dataclass(frozen=True)
class RateLimits:
    """The limits one emulated bot is held to; `RateLimits.off()` disables them."""

    per_bot: Window | None = Window(30, 1.0)
    # One per second, with a tolerance because senders' clocks jitter.
    per_private_chat: Window | None = Window(1, 0.9)
    per_group: Window | None = Window(20, 60.0)
    # Whether a 429 also blocks every other call of the bot until retry_after passes.
    bot_wide_penalty: bool = True

    @classmethod
    def off(cls) -> RateLimits:
        return cls(per_bot=None, per_private_chat=None, per_group=None, bot_wide_penalty=False)


@dataclass
class _Log:
    window: Window
    times: deque[float] = field(default_factory=deque)

    def wait_needed(self, now: float) -> float:
        """Seconds until one more message fits, 0 when it fits now."""
        while self.times and now - self.times[0] >= self.window.seconds:
            self.times.popleft()
        if len(self.times) < self.window.count:
            return 0.0
        return self.times[0] + self.window.seconds - now


class RateLimiter:
    """Counts sends per bot and per chat; answers how long a sender must wait."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._bot: _Log | None = _Log(limits.per_bot) if limits.per_bot else None
        self._chats: dict[int, _Log] = {}
        self.penalty_until = 0.0

    def penalty_left(self) -> int:
        """Whole seconds of bot-wide penalty left (0 when none)."""
        left = self.penalty_until - self.clock()
        return max(1, math.ceil(left)) if left > 0 else 0

    def start_penalty(self, retry_after: int) -> None:
        if self.limits.bot_wide_penalty:
            self.penalty_until = max(self.penalty_until, self.clock() + retry_after)

    def acquire(self, chat_id: int, count: int = 1) -> int:
        """Record `count` messages to `chat_id`, or return the retry_after (>0) that refuses them."""
        now = self.clock()
        logs = [log for log in (self._bot, self._chat_log(chat_id)) if log is not None]
        wait = max((self._wait_for(log, now, count) for log in logs), default=0.0)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            self.start_penalty(retry_after)
            return retry_after
        for log in logs:
            log.times.extend([now] * count)
        return 0

    @staticmethod
    def _wait_for(log: _Log, now: float, count: int) -> float:
        wait = log.wait_needed(now)
        if wait > 0 or count <= 1:
            return wait
        # Several messages at once (an album) must all fit in the window.
        free = log.window.count - len(log.times)
        if free >= count:
            return 0.0
        if count > log.window.count:
            return 0.0 if not log.times else log.times[-1] + log.window.seconds - now
        return log.times[count - free - 1] + log.window.seconds - now

    def _chat_log(self, chat_id: int) -> _Log | None:
        window = self.limits.per_group if chat_id < 0 else self.limits.per_private_chat
        if window is None:
            return None
        log = self._chats.get(chat_id)
        if log is None:
            log = self._chats[chat_id] = _Log(window)
        return log
