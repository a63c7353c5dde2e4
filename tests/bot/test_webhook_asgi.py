"""The webhook's ASGI fast path keeps the view's contract: store, then 200."""

from __future__ import annotations

import json
from unittest import mock

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connections

from nanobanana.bot.models import InboxUpdate
from nanobanana.bot.webhook_asgi import with_webhook

URL = "http://testserver/api/telegram/webhook"
SECRET = "test-webhook-secret"
pytestmark = pytest.mark.django_db(transaction=True)


async def django_stand_in(scope, receive, send):
    """What the fast path wraps; answers 299 so passing through is visible."""
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


@pytest.fixture
async def web():
    app = with_webhook(django_stand_in, threads=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client
    await sync_to_async(app.endpoint.shutdown)()
    await sync_to_async(connections.close_all)()  # the async ORM's thread, used by count()


def update(update_id: int = 1, text: str = "hi") -> dict:
    return {
        "update_id": update_id,
        "message": {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}, "text": text},
    }


def headers(secret: str | None = SECRET) -> dict[str, str]:
    return {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}


async def count(**filters) -> int:
    return await InboxUpdate.objects.filter(**filters).acount()


async def test_update_is_stored_and_queued_once_before_200(web, task_queue):
    for _ in range(3):
        response = await web.post(URL, json=update(10), headers=headers())
        assert response.status_code == 200
    assert response.json() == {"ok": True, "duplicate": True}
    assert await count(update_id=10) == 1
    assert task_queue.names() == ["bot.handle_update"]


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
async def test_missing_or_wrong_secret_gets_403(web, task_queue, secret):
    response = await web.post(URL, json=update(), headers=headers(secret))
    assert response.status_code == 403
    assert await count() == 0


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"update_id": "7"}', b'{"update_id": -1}', b"\xff"])
async def test_malformed_body_gets_400(web, body):
    response = await web.post(URL, content=body, headers=headers())
    assert response.status_code == 400
    assert await count() == 0


async def test_oversized_body_gets_413_declared_or_streamed(web, settings):
    settings.TELEGRAM_WEBHOOK_MAX_BODY_BYTES = 1000
    big = json.dumps(update(text="x" * 2000)).encode()
    declared = await web.post(URL, content=big, headers=headers())

    async def chunks():
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    streamed = await web.post(URL, content=chunks(), headers=headers())  # chunked: no Content-Length
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert await count() == 0


async def test_database_down_answers_503(web):
    with mock.patch("nanobanana.bot.models.InboxUpdate.objects.create", side_effect=OperationalError("down")):
        response = await web.post(URL, json=update(5), headers=headers())
    assert response.status_code == 503
    assert await count() == 0


async def test_get_is_405_and_other_paths_reach_django(web):
    assert (await web.get(URL)).status_code == 405
    other = await web.get("http://testserver/api/health")
    assert (other.status_code, other.content) == (299, b"django")
