"""Update delivery: getUpdates long polling with offsets, and the webhook with its secret and retries."""

import asyncio
import time

import httpx

from nanobanana.sandbox import FakeTelegram, RateLimits, updates
from nanobanana.sandbox.testing import WebhookRecorder

USER = 10001


async def test_get_updates_returns_queued_updates_until_confirmed_by_offset(fake):
    first = await fake.send_text(USER, "one")
    second = await fake.send_text(USER, "two")
    assert second["update_id"] == first["update_id"] + 1
    batch = (await fake.call_api("getUpdates")).result
    assert [update["message"]["text"] for update in batch] == ["one", "two"]
    again = (await fake.call_api("getUpdates", {"offset": first["update_id"] + 1})).result
    assert [update["update_id"] for update in again] == [second["update_id"]]
    assert fake.pending_update_count == 1
    done = (await fake.call_api("getUpdates", {"offset": second["update_id"] + 1})).result
    assert done == []
    assert fake.pending_update_count == 0


async def test_get_updates_limit_and_negative_offset(fake):
    for text in ("a", "b", "c"):
        await fake.send_text(USER, text)
    limited = (await fake.call_api("getUpdates", {"limit": 2})).result
    assert [update["message"]["text"] for update in limited] == ["a", "b"]
    last = (await fake.call_api("getUpdates", {"offset": -1})).result
    assert [update["message"]["text"] for update in last] == ["c"]


async def test_long_poll_waits_for_an_update(fake):
    poll = asyncio.create_task(fake.call_api("getUpdates", {"timeout": 5}))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await fake.send_text(USER, "wake up")
    reply = await asyncio.wait_for(poll, 2)
    assert [update["message"]["text"] for update in reply.result] == ["wake up"]


async def test_long_poll_returns_empty_after_its_timeout(fake):
    started = time.monotonic()
    reply = await fake.call_api("getUpdates", {"timeout": 1})
    assert reply.result == []
    assert 0.9 <= time.monotonic() - started < 3


async def test_allowed_updates_filters_what_is_queued(fake):
    await fake.call_api("getUpdates", {"allowed_updates": '["callback_query"]'})
    assert await fake.send_text(USER, "ignored") == {"message": fake.history(USER)[-1].snapshot()}
    assert fake.pending_update_count == 0


async def test_get_updates_conflicts_with_an_active_webhook(fake):
    await fake.call_api("setWebhook", {"url": "http://127.0.0.1:9/hook"})
    reply = await fake.call_api("getUpdates")
    assert reply.status == 409
    assert reply.json["description"].startswith("Conflict: can't use getUpdates method while webhook is active")


async def test_webhook_gets_updates_with_the_secret_header(fake):
    async with WebhookRecorder().serve() as hook:
        assert (await fake.call_api("setWebhook", {"url": hook.url, "secret_token": "s3cret_-X"})).ok
        sent = await fake.send_text(USER, "/start")
        await fake.wait_for(lambda: hook.received, timeout=5)
    received = hook.received[0]
    assert received.body == sent
    assert received.headers["x-telegram-bot-api-secret-token"] == "s3cret_-X"
    assert received.headers["content-type"] == "application/json"
    assert fake.pending_update_count == 0


async def test_webhook_failure_is_retried_and_recorded(fake):
    async with WebhookRecorder(statuses=[500, 503]).serve() as hook:
        await fake.call_api("setWebhook", {"url": hook.url})
        sent = await fake.send_text(USER, "hello")
        await fake.wait_for(lambda: fake.webhook.last_error_message, timeout=5)
        info = (await fake.call_api("getWebhookInfo")).result
        assert info["last_error_message"].startswith("Wrong response from the webhook: 50")
        assert isinstance(info["last_error_date"], int)
        await fake.wait_for(lambda: hook.received, timeout=5)
    assert hook.attempts == 3
    assert hook.update_ids == [sent["update_id"]]
    assert fake.pending_update_count == 0


async def test_unreachable_webhook_keeps_updates_pending(fake):
    await fake.call_api("setWebhook", {"url": "http://127.0.0.1:9/hook"})
    await fake.send_text(USER, "lost?")
    await fake.wait_for(lambda: fake.webhook.last_error_message, timeout=5)
    info = fake.webhook_info()
    assert info["pending_update_count"] == 1
    assert info["last_error_message"] == "Connection refused"
    await fake.call_api("deleteWebhook")
    assert [u["message"]["text"] for u in (await fake.call_api("getUpdates")).result] == ["lost?"]


async def test_webhook_delivers_in_order(fake):
    async with WebhookRecorder().serve() as hook:
        await fake.call_api("setWebhook", {"url": hook.url})
        sent = [await fake.send_text(USER, str(index)) for index in range(5)]
        await fake.wait_for(lambda: len(hook.received) == 5, timeout=5)
    assert hook.update_ids == [update["update_id"] for update in sent]


async def test_webhook_reply_with_a_method_is_performed(fake):
    reply = {"method": "sendMessage", "chat_id": USER, "text": "answered in the webhook reply"}
    async with WebhookRecorder(reply=reply).serve() as hook:
        await fake.call_api("setWebhook", {"url": hook.url})
        await fake.send_text(USER, "hi")
        message = await fake.wait_for(lambda: fake.last_message(USER), timeout=5)
    assert message.text == "answered in the webhook reply"


async def test_set_webhook_validates_like_telegram(fake):
    bad_secret = await fake.call_api("setWebhook", {"url": "https://x.org/h", "secret_token": "no spaces"})
    assert bad_secret.json["description"] == "Bad Request: secret token contains unallowed characters"
    bad_url = await fake.call_api("setWebhook", {"url": "ftp://x.org/h"})
    assert bad_url.status == 400
    bad_max = await fake.call_api("setWebhook", {"url": "https://x.org/h", "max_connections": 101})
    assert bad_max.status == 400


async def test_webhook_info_reports_the_configuration(fake):
    await fake.call_api(
        "setWebhook", {"url": "http://127.0.0.1:9/h", "max_connections": 5, "allowed_updates": ["message"]}
    )
    info = (await fake.call_api("getWebhookInfo")).result
    assert info["url"] == "http://127.0.0.1:9/h"
    assert info["max_connections"] == 5
    assert info["allowed_updates"] == ["message"]
    assert info["has_custom_certificate"] is False
    await fake.call_api("deleteWebhook", {"drop_pending_updates": True})
    assert (await fake.call_api("getWebhookInfo")).result == {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": 0,
    }


async def test_webhook_can_be_preconfigured_in_the_constructor():
    async with WebhookRecorder().serve() as hook:
        telegram = FakeTelegram(webhook_url=hook.url, webhook_secret="abc", limits=RateLimits.off())
        await telegram.send_text(USER, "hi")
        await telegram.wait_for(lambda: hook.received, timeout=5)
        await telegram.aclose()
    assert hook.received[0].headers["x-telegram-bot-api-secret-token"] == "abc"


async def test_update_ids_start_where_the_caller_says():
    fake = FakeTelegram(first_update_id=1_795_000_000_000)
    first = await fake.send_text(USER, "one")
    second = await fake.send_text(USER, "two")
    assert (first["update_id"], second["update_id"]) == (1_795_000_000_000, 1_795_000_000_001)


def test_the_web_process_sandbox_counts_updates_from_the_clock(monkeypatch):
    """A restarted `make run` must not reuse update ids its inbox already holds."""
    from config import asgi

    monkeypatch.setattr(asgi.time, "time", lambda: 1_795_000_000.5)
    sandbox = asgi._with_sandbox(lambda scope, receive, send: None)
    fake = sandbox.routes[0].app.state.fake
    assert fake.sync.send_text(USER, "hi")["update_id"] == 1_795_000_000_500


async def test_webhook_bursts_share_one_http_client(fake, monkeypatch):
    """A client per burst of updates built a TLS context each time: half the
    sandbox's CPU when updates arrive one by one."""
    made: list[httpx.AsyncClient] = []

    class Counted(httpx.AsyncClient):
        def __init__(self, **options):
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr(updates.httpx, "AsyncClient", Counted)
    async with WebhookRecorder().serve() as hook:
        await fake.call_api("setWebhook", {"url": hook.url})
        for index in range(3):
            await fake.send_text(USER, str(index))
            await fake.wait_for(lambda index=index: len(hook.received) == index + 1, timeout=5)
            await fake.wait_for(lambda: fake._delivery_task is None or fake._delivery_task.done(), timeout=5)
    assert len(made) == 1
    await fake.aclose()
    assert made[0].is_closed
