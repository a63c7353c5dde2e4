"""Progress edits of the status message never wait in a worker slot."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from nanobanana.bot import delivery
from nanobanana.core.errors import TransientError
from nanobanana.generation import services
from nanobanana.generation.models import GenerationRequest, RequestStatus

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


@pytest.fixture
def waiting(make_user, task_queue, catalog) -> GenerationRequest:
    request, _ = services.request_submit(
        user=make_user(tokens=10),
        model_slug="local-fast",
        raw_params={},
        prompt="x",
        chat_id=7,
        idempotency_key="k",
        status_message_id=3,
    )
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
