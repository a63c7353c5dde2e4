"""The Redis broker transport when Redis goes away while a message is
delivered but not yet acknowledged (nanobanana/core/broker.py).

Each test runs a redis-server of its own (the one the fault suite uses,
`tests/faults/servers.py`), takes a message without acknowledging it, as a
worker with late acknowledgement does, stops the server, and then does what
Celery's consumer does with a lost connection
(`Consumer.on_connection_error_after_connected`): `collect()` it, then
`close()` it. A task that was running acknowledges its message afterwards."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Queue

from nanobanana.core.broker import RedisTransport
from tests.faults.servers import Redis, free_port

STOCK = "kombu.transport.redis:Transport"
FIXED = "nanobanana.core.broker:RedisTransport"
QUEUE = Queue("work", Exchange("work", type="direct"), routing_key="work")
CONTROL = Queue("control", Exchange("control", type="direct"), routing_key="control")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Redis]:
    found = Redis(directory=tmp_path, port=free_port())
    found.start()
    yield found
    found.stop()


def in_flight(server: Redis, transport: str) -> tuple[Connection, list[Any]]:
    """A worker's connection: its task consumer holds one delivered,
    unacknowledged message, and a second channel (Celery's remote control
    has one) consumes too; both wait for more (BRPOP sent)."""
    connection = Connection(f"{server.url}/0", transport=transport)
    connection.Producer().publish({"task": 1}, exchange=QUEUE.exchange, routing_key="work", declare=[QUEUE])
    received: list[Any] = []
    consumer = Consumer(connection.default_channel, [QUEUE], callbacks=[lambda body, message: received.append(message)])
    consumer.consume()
    Consumer(connection.channel(), [CONTROL], callbacks=[lambda body, message: None]).consume()
    connection.drain_events(timeout=5)
    with pytest.raises(socket.timeout):
        connection.drain_events(timeout=0.2)
    assert len(received) == 1
    return connection, received


def lose(connection: Connection) -> None:
    """What Celery's consumer does with a connection that failed."""
    with contextlib.suppress(Exception):  # Celery ignores whatever collect() raises
        connection.collect()
    connection.close()


def test_stock_kombu_stops_the_worker_here(server):
    """Why the transport exists: the stock one raises AttributeError, which
    Celery does not retry, so the worker exits. When kombu fixes it, this
    fails, and nanobanana/core/broker.py can go."""
    connection, _ = in_flight(server, STOCK)
    server.stop()
    with pytest.raises(AttributeError, match="hostname"):
        lose(connection)


def test_losing_redis_with_an_unacknowledged_message_closes_cleanly(server):
    connection, _ = in_flight(server, FIXED)
    server.stop()
    lose(connection)  # no AttributeError: Celery's consumer goes on to reconnect


def test_a_late_acknowledgement_fails_as_a_connection_error(server):
    """A task that finishes after the loss acknowledges through the closed
    channel: kombu logs a connection error; anything else stops the worker."""
    connection, (message,) = in_flight(server, FIXED)
    server.stop()
    lose(connection)
    with pytest.raises(connection.connection_errors):
        message.ack()


def test_redis_urls_use_the_fixed_transport():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_BROKER_TRANSPORT == FIXED
    with current_app.connection_for_write() as connection:
        assert isinstance(connection.transport, RedisTransport)
