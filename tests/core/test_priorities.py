"""Status and progress edits are the broker's lowest priority: on Redis a
worker takes one only when no queue it consumes holds anything else, so a
backlog of edits never delays starts, completions or deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from django.conf import settings
from kombu import Connection

from nanobanana.core.broker import RedisTransport

QUEUES = ("updates", "generation", "delivery")


def route(task_name: str) -> dict[str, Any]:
    return dict(current_app.amqp.router.route({}, task_name))


def test_status_edits_are_routed_at_the_lowest_priority() -> None:
    assert route("delivery.status")["priority"] == 9
    assert route("delivery.status")["queue"].name == "delivery"
    for other in ("delivery.deliver", "delivery.deliver_many", "generation.start", "bot.handle_update"):
        assert route(other).get("priority") is None, other


@pytest.fixture
def connection() -> Iterator[Connection]:
    with Connection(settings.REDIS_URL, transport=RedisTransport) as found:
        channel: Any = found.default_channel  # kombu's Redis channel
        for queue in QUEUES:
            channel._purge(queue)
            for step in channel.priority_steps:
                channel.client.delete(channel._q_for_pri(queue, step))
        yield found


def test_the_worker_takes_an_edit_only_when_nothing_else_waits(connection: Connection) -> None:
    """The edits are queued first, at the priority their route gives them."""
    consumed: list[str] = []

    def take(body: dict[str, str], message: Any) -> None:
        consumed.append(body["task"])
        message.ack()

    delivery = connection.SimpleQueue("delivery")
    for _ in range(2):
        delivery.put({"task": "delivery.status"}, priority=route("delivery.status")["priority"])
    connection.SimpleQueue("generation").put({"task": "generation.start"})
    delivery.put({"task": "delivery.deliver"})
    # One consumer of all three queues, as `make worker` runs.
    with connection.Consumer(
        [connection.SimpleQueue(name).queue for name in QUEUES],
        callbacks=[take],
    ):
        for _ in range(4):
            connection.drain_events(timeout=2)
    assert sorted(consumed[:2]) == ["delivery.deliver", "generation.start"]
    assert consumed[2:] == ["delivery.status", "delivery.status"]
