"""A clock for tests: stands in for `nanobanana.core.clock.now`."""

from __future__ import annotations

from datetime import datetime, timedelta


class FakeClock:
    """Stands in for `nanobanana.core.clock.now`; moves only when told."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
