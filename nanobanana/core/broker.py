"""kombu's Redis transport, made to survive the loss of Redis while
messages are unacknowledged (decision 006).

With late acknowledgement a busy worker always holds delivered,
unacknowledged messages. When Redis goes away, Celery's consumer closes the
broken connection: kombu first detaches the transport from its connection
(`transport.client = None`), then closes the channel, and the channel tries
to put those messages back on their queues. Its pool is gone, so it builds a
new one from `transport.client` and raises `AttributeError: 'NoneType'
object has no attribute 'hostname'`; Celery retries connection errors only,
so the worker stops ("Unrecoverable error"). A task that finishes after the
loss acknowledges through the same closed channel and fails the same way.

Here a channel whose transport is detached raises a connection error
instead, which Celery and kombu handle (the consumer reconnects; a failed
acknowledgement is logged), and skips the restore at close, which could not
reach Redis anyway. Those messages stay in Redis's unacknowledged index,
and kombu's `restore_visible` queues them again after `visibility_timeout`
(if Redis kept them): every task is safe to run twice (conditional status
updates), and the inbox and generation sweeps redo lost work sooner.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


def _detached(channel: Any) -> bool:
    """The channel's transport was closed: there is no Redis to talk to."""
    transport = getattr(channel, "connection", None)
    return transport is None or getattr(transport, "client", None) is None


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> Any:
        if client is None and _detached(self.channel):
            # No Redis to put them back on: they stay in its unacknowledged
            # index for restore_visible (see the module docstring).
            if self._delivered is not None:
                self._delivered.clear()
            return None
        return super().restore_unacked(client)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> Any:
        if _detached(self):
            raise redis.exceptions.ConnectionError("the broker connection was closed after an error")
        # Every new pool starts here; kombu's type stubs leave this private method out.
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class RedisTransport(kombu_redis.Transport):
    """`redis://` with the fix above; selected by CELERY_BROKER_TRANSPORT."""

    Channel = Channel
