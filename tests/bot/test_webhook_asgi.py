"""The webhook's ASGI fast path keeps the view's contract: store, then 200;
and it stores concurrent updates together (group commit)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from nanobanana.bot.inbox import inbox_redrive
from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.bot.webhook_asgi import TaskQueuer, WebhookEndpoint, with_webhook
from nanobanana.core import tasks as core_tasks
from nanobanana.payments.models import TokenPackage
from nanobanana.payments.stars import stars_invoice_payload
from tests.bot.conftest import SQLSTATE_ADMIN_SHUTDOWN, SQLSTATE_DATA_EXCEPTION

URL = "http://testserver/api/telegram/webhook"
SECRET = "test-webhook-secret"
pytestmark = pytest.mark.django_db(transaction=True)


async def django_stand_in(scope, receive, send):
    """What the fast path wraps; answers 299 so passing through is visible."""
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


@pytest.fixture
async def serve():
    """`serve(**options)`: a client of the fast path built with `options`
    (`with_webhook`'s), and its `WebhookEndpoint`."""
    opened = []

    async def start(**options) -> tuple[httpx.AsyncClient, WebhookEndpoint]:
        app = with_webhook(django_stand_in, **{"threads": 2, **options})
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
        opened.append((app, client))
        return client, app.endpoint

    yield start
    for app, client in opened:
        await client.aclose()
        await sync_to_async(app.endpoint.shutdown)()
    await sync_to_async(connections.close_all)()  # the async ORM's thread, used by count()


@pytest.fixture
async def web(serve):
    client, _ = await serve()
    return client


def update(update_id: int = 1, text: str = "hi") -> dict:
    return {
        "update_id": update_id,
        "message": {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}, "text": text},
    }


def headers(secret: str | None = SECRET) -> dict[str, str]:
    return {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}


async def count(**filters) -> int:
    return await InboxUpdate.objects.filter(**filters).acount()


async def queued(endpoint: WebhookEndpoint, task_queue) -> list[int]:
    """The update ids queued for handling, sorted, once the queuer is done."""
    await asyncio.to_thread(endpoint.queuer.drain)
    return sorted(task_queue.updates())


async def test_update_is_stored_before_200_and_queued_once(serve, task_queue):
    web, endpoint = await serve()
    for _ in range(3):
        response = await web.post(URL, json=update(10), headers=headers())
        assert response.status_code == 200
        assert await count(update_id=10) == 1
    assert response.json() == {"ok": True, "duplicate": True}
    assert await queued(endpoint, task_queue) == [10]


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


async def test_database_down_answers_503(web, inbox_insert_fails):
    await sync_to_async(inbox_insert_fails)(5, SQLSTATE_ADMIN_SHUTDOWN)
    response = await web.post(URL, json=update(5), headers=headers())
    assert response.status_code == 503
    assert await count() == 0


async def test_get_is_405_and_other_paths_reach_django(web):
    assert (await web.get(URL)).status_code == 405
    other = await web.get("http://testserver/api/health")
    assert (other.status_code, other.content) == (299, b"django")


async def post_together(client, updates: list[dict]) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post(URL, json=body, headers=headers()) for body in updates))


async def test_concurrent_updates_are_stored_in_fewer_transactions_than_requests(serve, task_queue, inbox_transactions):
    # A batch starts when 5 wait (the 10 s wait is never reached): 10 requests, 2 batches.
    web, endpoint = await serve(batch_max_size=5, batch_max_wait=10.0)
    responses = await post_together(web, [update(100 + number) for number in range(10)])
    assert [response.status_code for response in responses] == [200] * 10
    assert all(response.json() == {"ok": True, "duplicate": False} for response in responses)
    assert await count(status=InboxStatus.PENDING) == 10
    assert endpoint.batcher.batches == 2
    assert await sync_to_async(inbox_transactions)() == 2
    assert await queued(endpoint, task_queue) == list(range(100, 110))


async def test_without_a_wait_updates_arriving_while_a_batch_is_written_go_together(serve, task_queue):
    web, endpoint = await serve(threads=2)  # one writer, no wait: the first goes alone, the others wait for it
    responses = await post_together(web, [update(200 + number) for number in range(20)])
    assert [response.status_code for response in responses] == [200] * 20
    assert await count() == 20
    assert await queued(endpoint, task_queue) == list(range(200, 220))
    assert endpoint.batcher.batches < 20


async def test_the_same_update_twice_in_one_batch_is_one_row_and_one_task(serve, task_queue, inbox_transactions):
    web, endpoint = await serve(batch_max_size=3, batch_max_wait=10.0)
    responses = await post_together(web, [update(7), update(7), update(8)])
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert sorted(response.json()["duplicate"] for response in responses[:2]) == [False, True]
    assert endpoint.batcher.batches == 1
    assert await count() == 2
    assert await queued(endpoint, task_queue) == [7, 8]


async def test_a_database_failure_mid_batch_answers_503_to_the_whole_batch_and_stores_none(
    serve, task_queue, inbox_insert_fails
):
    """The failure comes from PostgreSQL at the third row of four: the rows before it are not kept."""
    await sync_to_async(inbox_insert_fails)(303, SQLSTATE_ADMIN_SHUTDOWN)
    web, endpoint = await serve(batch_max_size=4, batch_max_wait=10.0)
    responses = await post_together(web, [update(301), update(302), update(303), update(304)])
    assert [response.status_code for response in responses] == [503] * 4
    assert endpoint.batcher.batches == 1
    assert all(response.json() == {"ok": False, "error": "storage unavailable"} for response in responses)
    assert await count() == 0
    assert await queued(endpoint, task_queue) == []
    # Telegram redelivers; the next batch (without the failing row) is stored.
    responses = await post_together(web, [update(301), update(302), update(304), update(305)])
    assert [response.status_code for response in responses] == [200] * 4
    assert await count() == 4
    assert await queued(endpoint, task_queue) == [301, 302, 304, 305]


async def test_an_update_the_database_refuses_fails_alone_not_its_batch(serve, task_queue, inbox_insert_fails):
    await sync_to_async(inbox_insert_fails)(402, SQLSTATE_DATA_EXCEPTION)
    web, endpoint = await serve(batch_max_size=3, batch_max_wait=10.0)
    responses = await post_together(web, [update(401), update(402), update(403)])
    assert [response.status_code for response in responses] == [200, 503, 200]
    assert endpoint.batcher.batches == 1 + 3  # the batch, then each update alone
    assert sorted(await sync_to_async(lambda: list(InboxUpdate.objects.values_list("update_id", flat=True)))()) == [
        401,
        403,
    ]
    assert await queued(endpoint, task_queue) == [401, 403]


async def test_a_broker_failure_after_the_commit_answers_200_and_leaves_the_rows_for_the_redrive(
    serve, monkeypatch, caplog
):
    def broker_down(task_name, args_list):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(core_tasks, "send_many", broker_down)
    web, endpoint = await serve(batch_max_size=3, batch_max_wait=10.0)
    responses = await post_together(web, [update(501), update(502), update(503)])
    assert [response.status_code for response in responses] == [200] * 3
    assert await count(status=InboxStatus.PENDING) == 3
    await asyncio.to_thread(endpoint.queuer.drain)
    assert "re-drive" in caplog.text

    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(core_tasks, "send", lambda name, args, countdown: sent.append((name, args)))

    def redrive_later() -> int:
        InboxUpdate.objects.update(received_at=timezone.now() - timedelta(hours=1))
        return inbox_redrive()

    assert await sync_to_async(redrive_later)() == 3
    assert sorted(args[0] for _, args in sent) == [501, 502, 503]


@pytest.mark.parametrize(("price_change", "ok"), [(0, True), (1, False)])
async def test_a_pre_checkout_query_is_answered_in_the_reply_and_stored_as_done(
    serve, task_queue, packages, price_change, ok
):
    web, endpoint = await serve()
    package = await TokenPackage.objects.filter(is_active=True).order_by("pk").afirst()
    assert package is not None
    query = {
        "id": "q-1",
        "from": {"id": 42, "is_bot": False, "first_name": "A", "language_code": "en"},
        "currency": "XTR",
        "total_amount": package.price_stars + price_change,
        "invoice_payload": stars_invoice_payload(package=package, telegram_id=42),
    }
    response = await web.post(URL, json={"update_id": 600, "pre_checkout_query": query}, headers=headers())
    reply = response.json()
    assert response.status_code == 200
    assert (reply["method"], reply["pre_checkout_query_id"], reply["ok"]) == ("answerPreCheckoutQuery", "q-1", ok)
    assert ("error_message" in reply) is not ok
    assert await count(update_id=600, status=InboxStatus.DONE) == 1
    assert await queued(endpoint, task_queue) == []
    again = await web.post(URL, json={"update_id": 600, "pre_checkout_query": query}, headers=headers())
    assert again.json() == reply  # a redelivery gets the answer again


@pytest.mark.parametrize(
    ("escaped", "stored"),
    [
        ("a\\u0000b", "a\ufffdb"),
        ("lone \\ud800 surrogate", "lone \ufffd surrogate"),
        ("pair \\ud83d\\ude00 kept", "pair \U0001f600 kept"),
    ],
)
async def test_escapes_postgres_refuses_are_stored_as_replacement_characters(web, task_queue, escaped, stored):
    body = json.dumps(update(700, text="TEXT")).replace('"TEXT"', f'"{escaped}"')  # escapes as Telegram could send
    response = await web.post(URL, content=body.encode(), headers=headers())
    assert response.status_code == 200
    row = await InboxUpdate.objects.aget(update_id=700)
    assert row.payload["message"]["text"] == stored


@pytest.mark.parametrize(
    "body",
    [
        b'{"update_id": 1, "x": NaN}',
        b'{"update_id": 1, "x": 1e999}',
        b'{"update_id": 9223372036854775808}',
        b"[" * 5000,
    ],
)
async def test_bodies_that_could_not_be_stored_or_read_back_get_400_not_503(web, body):
    response = await web.post(URL, content=body, headers=headers())
    assert response.status_code == 400
    assert await count() == 0


def test_the_queuer_sends_what_waited_meanwhile_in_one_call(monkeypatch):
    calls: list[list[int]] = []
    first_started, release = threading.Event(), threading.Event()

    def send_many(task_name, args_list):
        calls.append([update_id for args in args_list for update_id in args[0]])
        if len(calls) == 1:
            first_started.set()
            release.wait(10)

    monkeypatch.setattr(core_tasks, "send_many", send_many)
    queuer = TaskQueuer()
    queuer.add([1])
    assert first_started.wait(10)
    queuer.add([2, 3])
    queuer.add([])
    queuer.add([4])
    release.set()
    queuer.drain()
    queuer.shutdown()
    assert calls == [[1], [2, 3, 4]]
