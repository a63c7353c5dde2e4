"""Delivery from a worker: progress edits of the status message never wait
in a worker slot, and one delivery at a time sends an outcome (a re-driven
delivery never sends alongside one still running; a claim left by a killed
worker expires)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from nanobanana.bot import delivery
from nanobanana.core.errors import TransientError
from nanobanana.core.process import this_process
from nanobanana.generation import recovery, services
from nanobanana.generation.models import DeliveryStatus, GenerationRequest, RequestStatus
from tests.processes import ended_process

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


def submit_image(make_user, *, key: str = "k") -> GenerationRequest:
    user = make_user(tokens=10)
    request, _ = services.request_submit(
        user=user,
        model_slug="local-fast",
        raw_params={},
        prompt="a lighthouse",
        chat_id=user.telegram_id,
        idempotency_key=key,
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
    assert recovery.requests_sweep().redelivered == 0  # a delivery holds it
    assert services.delivery_claim(request_id=finished.pk) is None
    expired = timezone.now() - timedelta(seconds=1)
    GenerationRequest.objects.filter(pk=finished.pk).update(delivery_claimed_until=expired)
    assert recovery.requests_sweep().redelivered == 1
    assert task_queue.names() == ["delivery.deliver"]
    assert services.delivery_claim(request_id=finished.pk) is not None


def test_a_delivery_claim_of_a_process_that_died_is_given_back_by_the_next_sweep(finished, task_queue):
    just_now = timezone.now() - timedelta(seconds=5)  # too recent for the usual re-drive
    GenerationRequest.objects.filter(pk=finished.pk).update(
        finished_at=just_now,
        delivery_claimed_until=timezone.now() + services.DELIVERY_LEASE,
        delivery_claimed_by=ended_process(),
    )

    report = recovery.requests_sweep()

    assert (report.orphans, report.redelivered) == (1, 1)
    assert task_queue.names() == ["delivery.deliver"]
    assert services.delivery_claim(request_id=finished.pk) is not None


def test_a_delivery_claim_of_a_living_process_stays(finished, task_queue):
    GenerationRequest.objects.filter(pk=finished.pk).update(
        delivery_claimed_until=timezone.now() + services.DELIVERY_LEASE, delivery_claimed_by=this_process()
    )
    assert recovery.requests_sweep().orphans == 0
    assert services.delivery_claim(request_id=finished.pk) is None


def test_a_request_still_running_cannot_be_claimed_for_delivery(make_user, task_queue, catalog):
    request = submit_image(make_user)
    assert services.delivery_claim(request_id=request.pk) is None


class SlowBot(RecordingBot):
    """Each document takes a moment to upload; counts how many were in flight at once."""

    def __init__(self, *, fail_first: bool = False) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_first = fail_first

    async def send_document(self, *args: Any, **kwargs: Any) -> None:
        if self.fail_first:
            self.fail_first = False
            raise TransientError("sendDocument: 502")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.05)
        self.in_flight -= 1
        await super().send_document(*args, **kwargs)


@pytest.fixture
def three_finished(make_user, task_queue, catalog) -> list[int]:
    requests = [submit_image(make_user, key=f"k{n}") for n in range(3)]
    task_queue.run_all(only="generation.")
    task_queue.pending.clear()
    return [request.pk for request in requests]


async def test_deliveries_of_many_requests_overlap(three_finished):
    bot = SlowBot()
    outcomes = await delivery.deliver_many(bot, three_finished)  # type: ignore[arg-type]
    assert outcomes == {DeliveryStatus.DELIVERED: 3}
    assert bot.calls.count("sendDocument") == 3
    assert bot.most_in_flight == 3  # all three uploads were under way at once


async def test_a_transient_failure_in_many_is_retried_on_its_own(three_finished, task_queue):
    bot = SlowBot(fail_first=True)
    outcomes = await delivery.deliver_many(bot, three_finished)  # type: ignore[arg-type]
    assert outcomes == {DeliveryStatus.DELIVERED: 2, "retrying": 1}
    retries = [(name, args, countdown) for name, args, countdown in task_queue.pending if name == "delivery.deliver"]
    assert len(retries) == 1
    assert retries[0][2] == delivery.DELIVER_RETRY_SECONDS
    retried = await sync_to_async(state)(retries[0][1][0])
    assert retried.delivery_status == DeliveryStatus.PENDING
    assert retried.delivery_claimed_until is None  # free for the retry
