"""Injected faults and blocked users."""

import time

import pytest

from nanobanana.sandbox import FakeTelegram, RateLimits

USER = 10001
OTHER = 10002


@pytest.fixture
def telegram(fake: FakeTelegram) -> FakeTelegram:
    fake.user(OTHER)
    return fake


async def send(telegram: FakeTelegram, chat_id: int = USER):
    return await telegram.call_api("sendMessage", {"chat_id": chat_id, "text": "hi"})


@pytest.mark.parametrize(
    ("kind", "status", "description"),
    [
        ("server_error", 500, "Internal Server Error"),
        ("bad_gateway", 502, "Bad Gateway"),
        ("blocked", 403, "Forbidden: bot was blocked by the user"),
        ("file_too_big", 400, "Bad Request: file is too big"),
        ("entity_too_large", 413, "Request Entity Too Large"),
    ],
)
async def test_error_faults_answer_like_telegram_then_stop(telegram, kind, status, description):
    fault = telegram.inject(kind, method="sendMessage")
    first = await send(telegram)
    assert first.status == status
    assert first.json == {"ok": False, "error_code": status, "description": description}
    assert (await send(telegram)).ok
    assert fault.hits == 1
    assert fault.exhausted


async def test_retry_after_fault_carries_retry_after():
    telegram = FakeTelegram(limits=RateLimits(bot_wide_penalty=False))
    telegram.user(USER)
    telegram.inject("retry_after", method="sendMessage", retry_after=7)
    reply = await send(telegram)
    assert reply.status == 429
    assert reply.json["parameters"] == {"retry_after": 7}
    assert (await send(telegram)).ok


async def test_retry_after_fault_starts_the_bot_wide_penalty():
    telegram = FakeTelegram()
    telegram.user(USER)
    telegram.inject("retry_after", method="sendDocument", retry_after=30)
    assert (await telegram.call_api("sendDocument", {"chat_id": USER, "document": "x"})).status == 429
    assert (await telegram.call_api("getMe")).status == 429


async def test_faults_match_method_and_chat_only(telegram):
    telegram.inject("server_error", method="sendPhoto")
    telegram.inject("blocked", chat_id=OTHER, times=2)
    assert (await send(telegram, USER)).ok
    assert (await send(telegram, OTHER)).status == 403
    assert (await send(telegram, OTHER)).status == 403
    assert (await send(telegram, OTHER)).ok


async def test_fault_without_times_lasts_until_cleared(telegram):
    telegram.inject("bad_gateway", times=None)
    assert [(await send(telegram)).status for _ in range(3)] == [502, 502, 502]
    telegram.clear_faults()
    assert (await send(telegram)).ok


async def test_timeout_fault_hangs_then_handles_the_call(telegram):
    telegram.inject("timeout", method="sendMessage", seconds=0.3)
    started = time.monotonic()
    reply = await send(telegram)
    assert time.monotonic() - started >= 0.3
    assert reply.ok  # the call still happens: the client that gave up must not assume it failed
    assert len(telegram.messages_to(USER)) == 1


async def test_malformed_fault_answers_non_json(client, api, telegram):
    telegram.inject("malformed", method="getMe")
    response = await client.get(f"{api}/getMe")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert (await client.get(f"{api}/getMe")).json()["ok"] is True


async def test_blocked_user_refuses_sends_and_edits_until_unblocked(telegram):
    sent = (await send(telegram)).result
    telegram.block(USER)
    assert (await send(telegram)).json["description"] == "Forbidden: bot was blocked by the user"
    edit = await telegram.call_api("editMessageText", {"chat_id": USER, "message_id": sent["message_id"], "text": "x"})
    assert edit.status == 403
    action = await telegram.call_api("sendChatAction", {"chat_id": USER, "action": "typing"})
    assert action.status == 403
    assert (await send(telegram, OTHER)).ok
    telegram.unblock(USER)
    assert (await send(telegram)).ok
