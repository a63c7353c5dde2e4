"""Time as an object, so waits can be simulated in tests and benchmarks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in epoch seconds, and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def parse_timestamp(value: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp as Railway and GitHub write them."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def format_timestamp(epoch: float) -> str:
    """ISO 8601 in UTC with a `Z`, the form Railway's date arguments take."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
