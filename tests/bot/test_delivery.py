"""Delivery from a worker: progress edits of the status message never wait
in a worker slot, and one delivery at a time sends an outcome (a re-driven
delivery never sends alongside one still running; a claim left by a killed
worker expires)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from nanobanana.bot import delivery
from nanobanana.core.errors import TransientError
from nanobanana.generation import services
from nanobanana.generation.models import DeliveryStatus, GenerationRequest, RequestStatus

pytestmark = pytest.mark.django_db(transaction=True)


class BusyBot:
    """Answers every edit with the sender's "no slot within your wait"."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self.edits = 0

    async def edit_message_text(self, **_: Any) -> None:
        self.edits += 1
        raise TransientError("editMessageText: next send slot later", retry_after=self.retry_after)

    async def send_message(self, *_: Any, **__: Any) -> None:  # pragma: no cover - must not be reached
        raise AssertionError("a status message that exists is edited, never sent anew")


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The ORM ran on asgiref's thread: close its connection before teardown."""
    yield
    await sync_to_async(connections.close_all)()


def submit_image(make_user) -> GenerationRequest:
    request, _ = services.request_submit(
        user=make_user(tokens=10),
        model_slug="local-fast",
        raw_params={},
        prompt="a lighthouse",
        chat_id=7,
        idempotency_key="k",
        status_message_id=3,
    )
    return request


@pytest.fixture
def waiting(make_user, task_queue, catalog) -> GenerationRequest:
    request = submit_image(make_user)
    GenerationRequest.objects.filter(pk=request.pk).update(status=RequestStatus.PROCESSING, started_at=timezone.now())
    return request


async def test_a_progress_edit_whose_slot_is_near_is_left_to_the_task_retry(waiting):
    bot = BusyBot(retry_after=1.0)
    with pytest.raises(TransientError):
        await delivery.status_processing(bot, waiting.pk)  # type: ignore[arg-type]
    assert bot.edits == 1


async def test_a_progress_edit_whose_slot_is_far_is_dropped(waiting):
    bot = BusyBot(retry_after=delivery.STATUS_RETRY_WITHIN_SECONDS + 10)
    await delivery.status_processing(bot, waiting.pk)  # type: ignore[arg-type]
    assert bot.edits == 1


class RecordingBot:
    """Takes every send and edit delivery makes; `on_document` runs inside
    sendDocument, before it counts, as something happening mid-send."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.on_document: Callable[[], Awaitable[None]] | None = None

    async def send_photo(self, *_: Any, **__: Any) -> None:
        self.calls.append("sendPhoto")

    async def send_document(self, *_: Any, **__: Any) -> None:
        if self.on_document is not None:
            hook, self.on_document = self.on_document, None
            await hook()
        self.calls.append("sendDocument")

    async def edit_message_text(self, **_: Any) -> None:
        self.calls.append("editMessageText")

    async def send_message(self, *_: Any, **__: Any) -> None:
        self.calls.append("sendMessage")


@pytest.fixture
def finished(make_user, task_queue, catalog) -> GenerationRequest:
    """A succeeded image request whose outcome is not delivered yet."""
    request = submit_image(make_user)
    task_queue.run_all(only="generation.")
    task_queue.pending.clear()  # the delivery tasks: these tests call delivery directly
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
    return request


def state(request_id: int) -> GenerationRequest:
    return GenerationRequest.objects.get(pk=request_id)


async def test_a_delivery_redriven_while_the_first_sends_sends_nothing(finished):
    bot = RecordingBot()
    second: list[str] = []

    async def redriven() -> None:
        second.append(await delivery.deliver(bot, finished.pk))  # type: ignore[arg-type]

    bot.on_document = redriven
    outcome = await delivery.deliver(bot, finished.pk)  # type: ignore[arg-type]
    assert second == ["busy"]
    assert outcome == DeliveryStatus.DELIVERED
    assert bot.calls.count("sendDocument") == 1
    after = await sync_to_async(state)(finished.pk)
    assert after.delivery_status == DeliveryStatus.DELIVERED
    assert after.delivery_claimed_until is None


async def test_a_transient_error_gives_the_claim_back_and_the_retry_sends_the_rest_once(finished):
    bot = RecordingBot()

    async def telegram_down() -> None:
        raise TransientError("sendDocument: 502")

    bot.on_document = telegram_down
    with pytest.raises(TransientError):
        await delivery.deliver(bot, finished.pk)  # type: ignore[arg-type]
    assert (await sync_to_async(state)(finished.pk)).delivery_claimed_until is None
    assert await delivery.deliver(bot, finished.pk) == DeliveryStatus.DELIVERED  # type: ignore[arg-type]
    assert bot.calls.count("sendDocument") == 1
    assert await delivery.deliver(bot, finished.pk) == DeliveryStatus.DELIVERED  # type: ignore[arg-type]
    assert bot.calls.count("sendDocument") == 1  # delivered: nothing more is sent


def test_a_claim_left_by_a_killed_worker_expires_and_the_sweep_redrives(finished, task_queue):
    long_ago = timezone.now() - timedelta(minutes=10)
    GenerationRequest.objects.filter(pk=finished.pk).update(
        finished_at=long_ago, delivery_claimed_until=timezone.now() + timedelta(seconds=60)
    )
    assert services.requests_sweep().redelivered == 0  # a delivery holds it
    assert services.delivery_claim(request_id=finished.pk) is None
    expired = timezone.now() - timedelta(seconds=1)
    GenerationRequest.objects.filter(pk=finished.pk).update(delivery_claimed_until=expired)
    assert services.requests_sweep().redelivered == 1
    assert task_queue.names() == ["delivery.deliver"]
    assert services.delivery_claim(request_id=finished.pk) is not None


def test_a_request_still_running_cannot_be_claimed_for_delivery(make_user, task_queue, catalog):
    request = submit_image(make_user)
    assert services.delivery_claim(request_id=request.pk) is None
