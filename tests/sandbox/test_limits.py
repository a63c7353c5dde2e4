"""Flood limits: per private chat, per group, per bot, and the bot-wide penalty after a 429."""

from nanobanana.sandbox import FakeTelegram, RateLimits, Window
from nanobanana.sandbox.testing import ManualClock

USER = 10001
OTHER = 10002
GROUP = -100123


def limited(clock: ManualClock, **limits) -> FakeTelegram:
    telegram = FakeTelegram(clock=clock, limits=RateLimits(**limits))
    telegram.user(USER)
    telegram.user(OTHER)
    telegram.group(GROUP)
    return telegram


async def send(telegram: FakeTelegram, chat_id: int, text: str = "hi"):
    return await telegram.call_api("sendMessage", {"chat_id": chat_id, "text": text})


async def test_second_message_to_a_private_chat_within_a_second_gets_429():
    clock = ManualClock()
    telegram = limited(clock)
    assert (await send(telegram, USER)).ok
    clock.advance(0.5)
    reply = await send(telegram, USER)
    assert reply.status == 429
    assert reply.json == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }


async def test_private_chat_tolerates_a_slightly_early_sender():
    clock = ManualClock()
    telegram = limited(clock)
    assert (await send(telegram, USER)).ok
    clock.advance(0.92)
    assert (await send(telegram, USER)).ok


async def test_a_429_blocks_every_call_of_the_bot_until_retry_after_passes():
    clock = ManualClock()
    telegram = limited(clock)
    await send(telegram, USER)
    assert (await send(telegram, USER)).status == 429
    other_chat = await send(telegram, OTHER)
    assert other_chat.status == 429
    assert (await telegram.call_api("getMe")).status == 429
    clock.advance(1.0)
    assert (await telegram.call_api("getMe")).ok
    assert (await send(telegram, OTHER)).ok


async def test_without_the_bot_wide_penalty_other_chats_still_work():
    clock = ManualClock()
    telegram = limited(clock, bot_wide_penalty=False)
    await send(telegram, USER)
    assert (await send(telegram, USER)).status == 429
    assert (await send(telegram, OTHER)).ok


async def test_group_allows_20_messages_a_minute():
    clock = ManualClock()
    telegram = limited(clock, per_bot=None)
    for _ in range(20):
        assert (await send(telegram, GROUP)).ok
        clock.advance(1.0)
    reply = await send(telegram, GROUP)
    assert reply.status == 429
    assert (
        reply.json["parameters"]["retry_after"] == 40
    )  # sent at t=0..19, now t=20: the first leaves the window at t=60
    clock.advance(40)
    assert (await send(telegram, GROUP)).ok


async def test_bot_allows_30_messages_a_second_across_chats():
    clock = ManualClock()
    telegram = limited(clock, per_private_chat=None)
    for index in range(30):
        assert (await send(telegram, USER if index % 2 else OTHER)).ok
    assert (await send(telegram, USER)).status == 429


async def test_limits_are_configurable():
    clock = ManualClock()
    telegram = limited(clock, per_private_chat=Window(3, 1.0))
    assert [(await send(telegram, USER)).status for _ in range(4)] == [200, 200, 200, 429]


async def test_edits_count_but_callback_answers_and_chat_actions_are_free():
    clock = ManualClock()
    telegram = limited(clock)
    sent = (await send(telegram, USER)).result
    assert (await telegram.call_api("sendChatAction", {"chat_id": USER, "action": "typing"})).ok
    assert (await telegram.call_api("deleteMessage", {"chat_id": USER, "message_id": sent["message_id"]})).ok
    sent = await send(telegram, OTHER)
    clock.advance(0.1)
    edit = await telegram.call_api(
        "editMessageText", {"chat_id": OTHER, "message_id": sent.result["message_id"], "text": "v2"}
    )
    assert edit.status == 429


async def test_refused_sends_do_not_use_up_the_limit():
    clock = ManualClock()
    telegram = limited(clock)
    assert (await send(telegram, USER, text="")).status == 400
    assert (await send(telegram, USER)).ok


async def test_limits_off_never_refuse():
    telegram = FakeTelegram(limits=RateLimits.off())
    telegram.user(USER)
    assert all([(await send(telegram, USER)).ok for _ in range(50)])
