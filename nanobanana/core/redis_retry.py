"""How the bot's asyncio Redis clients (FSM storage and update locks, the
sender's limiter) treat a pooled connection that Redis has closed meanwhile
(a Redis restart, an idle timeout): the command that finds it dead is sent
again on a new connection, up to twice, instead of failing.

Without it, every connection in a pool failed its next command once after a
Redis restart (found by the fault suite), and each update or send that drew
one was handled again later, after part of it had run.

A command whose connection dies after Redis ran it but before the answer
arrived runs twice: a limiter reservation then wastes one slot, and an
update lock's SET NX finds its own first copy, so that update waits out the
lock (`bot/isolation.py`) and is handled after the re-drive delay. Both are
rare and neither loses or doubles anything."""

from __future__ import annotations

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


def stale_connection_retry() -> Retry:
    """A new policy object for one client (redis-py keeps state on it)."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
