"""The sender middleware: limits, Telegram's errors, and the token kept secret.

Telegram is faked at the middleware's boundary (`make_request`), raising
aiogram's exceptions the way aiogram's session builds them. Time is a fake
clock shared by the file limiter and the sender's sleep, so waits are exact
and cost nothing.
"""

from __future__ import annotations

import gc
import inspect
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiogram.methods
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    AnswerPreCheckoutQuery,
    EditMessageText,
    GetMe,
    SendChatAction,
    SendDocument,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import Response
from aiohttp import web
from django.conf import settings

from nanobanana.bot.limiter import MICROSECONDS, FileSlotStore, TelegramLimiter
from nanobanana.bot.sender import (
    LIMITED_METHODS,
    UNLIMITED_SEND_LIKE_METHODS,
    RecipientBlocked,
    TelegramSender,
    bot_session,
    chat_turns,
    create_bot,
    inline_wait_at_most,
    mark_user_blocked,
    run_with_bot,
    sender_of,
)
from nanobanana.core.errors import TransientError

START = 1_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def microseconds(self) -> int:
        return round(self.now * MICROSECONDS)

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@dataclass
class FakeTelegram:
    """The next middleware: answers from a script, records each call's time."""

    clock: FakeClock
    script: list[Any] = field(default_factory=list)  # exceptions to raise, in order; then success
    calls: list[tuple[str, Any, float]] = field(default_factory=list)

    async def __call__(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        self.calls.append((method.__api_method__, getattr(method, "chat_id", None), self.clock.now))
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return True

    @property
    def times(self) -> list[float]:
        return [time for _, _, time in self.calls]


@dataclass
class BlockedRecorder:
    chat_ids: list[int] = field(default_factory=list)

    async def __call__(self, chat_id: int) -> None:
        self.chat_ids.append(chat_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_limiter(tmp_path, clock) -> Callable[[], TelegramLimiter]:
    """Each call is another 'process' on the same shared state."""

    def _make() -> TelegramLimiter:
        # 25/s: slots 40 ms wide, so START and whole seconds are slot starts and waits are exact.
        store = FileSlotStore(tmp_path / "limiter", rate_per_second=25.0, clock=clock.microseconds)
        return TelegramLimiter(store, chat_interval=1.0, group_interval=3.0)

    return _make


@pytest.fixture
def blocked() -> BlockedRecorder:
    return BlockedRecorder()


@pytest.fixture
def make_sender(make_limiter, clock, blocked) -> Callable[..., TelegramSender]:
    def _make(**overrides: Any) -> TelegramSender:
        options: dict[str, Any] = {
            "limiter": make_limiter(),
            "on_blocked": blocked,
            "max_inline_wait": 10.0,
            "sleep": clock.sleep,
            "monotonic": lambda: clock.now,
        }
        options.update(overrides)
        return TelegramSender(**options)

    return _make


@pytest.fixture
def sender(make_sender) -> TelegramSender:
    return make_sender()


@pytest.fixture
async def bot() -> Any:
    bot = Bot(settings.TELEGRAM_BOT_TOKEN)
    yield bot
    await bot.session.close()


def send(chat_id: int | str = 1, text: str = "hi") -> SendMessage:
    return SendMessage(chat_id=chat_id, text=text)


def retry_after(seconds: int, method: TelegramMethod[Any] | None = None) -> TelegramRetryAfter:
    return TelegramRetryAfter(method=method or send(), message="Too Many Requests: retry after", retry_after=seconds)


def forbidden(description: str, method: TelegramMethod[Any] | None = None) -> TelegramForbiddenError:
    return TelegramForbiddenError(method=method or send(), message=description)


def _reply_type(method: type[TelegramMethod[Any]]) -> weakref.ref[Any]:
    return weakref.ref(Response[method.__returning__])  # type: ignore[name-defined]


async def test_the_reply_type_of_a_sent_method_outlives_its_replies(sender, clock, bot):
    """aiogram decodes each reply as `Response[...]`, which pydantic caches
    weakly: without the sender holding it, the class is built again (3 ms) at
    the next reply once garbage collection has run."""
    await sender(FakeTelegram(clock), bot, EditMessageText(chat_id=1, message_id=1, text="x"))
    kept = _reply_type(EditMessageText)
    gc.collect()

    assert kept() is not None


async def test_sends_to_one_chat_go_out_a_chat_interval_apart(sender, clock, bot):
    telegram = FakeTelegram(clock)

    for _ in range(3):
        await sender(telegram, bot, send(1))

    assert telegram.times == pytest.approx([START, START + 1.0, START + 2.0])


async def test_sends_to_a_group_go_out_a_group_interval_apart(sender, clock, bot):
    telegram = FakeTelegram(clock)

    await sender(telegram, bot, send(-100500))
    await sender(telegram, bot, send(-100500))

    assert telegram.times == pytest.approx([START, START + 3.0])


async def test_flood_control_retries_the_same_call_after_the_pause(sender, clock, bot):
    telegram = FakeTelegram(clock, script=[retry_after(3), "sent"])

    result = await sender(telegram, bot, send(1))

    assert result == "sent"
    assert [name for name, _, _ in telegram.calls] == ["sendMessage", "sendMessage"]
    assert telegram.times[1] >= START + 3.0


async def test_flood_control_pauses_sends_to_other_chats_in_other_processes(make_sender, clock, bot):
    first_process = make_sender(max_attempts=1)
    second_process = make_sender()
    with pytest.raises(TransientError):
        await first_process(FakeTelegram(clock, script=[retry_after(4)]), bot, send(1))
    telegram = FakeTelegram(clock)

    await second_process(telegram, bot, send(2))

    assert telegram.times == pytest.approx([START + 4.0])


async def test_flood_control_that_persists_becomes_a_transient_error(sender, clock, bot):
    telegram = FakeTelegram(clock, script=[retry_after(1) for _ in range(10)])

    with pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert len(telegram.calls) == sender.max_attempts == 5
    assert caught.value.retry_after == 1


async def test_flood_control_longer_than_the_inline_wait_is_left_to_the_task_retry(sender, clock, bot):
    telegram = FakeTelegram(clock, script=[retry_after(30)])

    with pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert len(telegram.calls) == 1
    assert caught.value.retry_after == 30
    later = await sender.limiter.reserve(99, max_wait=1000)
    assert later.wait == pytest.approx(30.0), "everyone stays paused"


async def test_flood_control_on_an_unlimited_method_waits_then_retries(sender, clock, bot):
    method = AnswerCallbackQuery(callback_query_id="q")
    telegram = FakeTelegram(clock, script=[retry_after(2, method)])

    await sender(telegram, bot, method)

    assert telegram.times == pytest.approx([START, START + 2.0])


async def test_a_send_that_would_wait_too_long_is_not_sent_but_retried_later(sender, clock, bot):
    await sender.limiter.pause(25)
    telegram = FakeTelegram(clock)

    with pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert telegram.calls == []
    assert caught.value.retry_after == pytest.approx(25.0)
    assert clock.now == START, "no time spent waiting in-process"


async def test_inside_inline_wait_at_most_a_near_slot_is_retried_instead_of_slept(sender, clock, bot):
    telegram = FakeTelegram(clock)
    await sender(telegram, bot, send(1))  # the chat's next slot is a second away

    with inline_wait_at_most(0.25), pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert len(telegram.calls) == 1
    assert caught.value.retry_after == pytest.approx(1.0)
    assert clock.now == START, "no time spent waiting in-process"
    await sender(telegram, bot, send(1))  # outside it, the sender waits as usual
    assert telegram.times == pytest.approx([START, START + 1.0])


async def test_a_chat_backlog_beyond_the_inline_wait_is_retried_later(sender, clock, bot):
    for _ in range(11):
        await sender.limiter.reserve(1, max_wait=1000)
    telegram = FakeTelegram(clock)

    with pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert telegram.calls == []
    assert caught.value.retry_after == pytest.approx(11.0)


async def test_a_send_with_more_than_one_send_ahead_in_its_chat_gives_the_worker_slot_back(sender, clock, bot):
    for _ in range(2):
        await sender.limiter.reserve(1, max_wait=1000)
    telegram = FakeTelegram(clock)

    with chat_turns(), pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert telegram.calls == []
    assert caught.value.retry_after == pytest.approx(2.0)
    assert clock.now == START, "no time spent waiting in-process"


async def test_outside_chat_turns_a_busy_chat_is_waited_for_in_process(sender, clock, bot):
    """A handler or a delivery sends several messages in a row: refused
    halfway, its retry would send the first ones again."""
    for _ in range(2):
        await sender.limiter.reserve(1, max_wait=1000)
    telegram = FakeTelegram(clock)

    await sender(telegram, bot, send(1))

    assert telegram.times == pytest.approx([START + 2.0])


async def test_a_send_with_one_send_ahead_in_its_chat_waits_in_process(sender, clock, bot):
    telegram = FakeTelegram(clock)
    await sender(telegram, bot, send(1))

    await sender(telegram, bot, send(1))  # a caption, then its keyboard message

    assert telegram.times == pytest.approx([START, START + 1.0])


async def test_sends_deferred_by_their_chat_come_back_one_interval_apart_and_find_it_free(sender, clock, bot):
    for _ in range(2):
        await sender.limiter.reserve(1, max_wait=1000)
    telegram = FakeTelegram(clock)
    retry_afters: list[float] = []
    for _ in range(3):
        with chat_turns(), pytest.raises(TransientError) as caught:
            await sender(telegram, bot, send(1))
        assert caught.value.retry_after is not None
        retry_afters.append(caught.value.retry_after)
    assert retry_afters == pytest.approx([2.0, 3.0, 4.0]), "spread out, not all at once"

    for retry_after in retry_afters:  # each task comes back on its countdown
        clock.now = START + retry_after
        with chat_turns():
            await sender(telegram, bot, send(1))

    assert telegram.times == pytest.approx([START + 2.0, START + 3.0, START + 4.0]), "sent at once, no waiting"


async def test_a_wait_for_the_bot_calendar_is_still_slept_up_to_the_inline_limit(sender, clock, bot):
    for chat in range(100, 225):  # 125 sends at 25/s: the bot is busy for 5 s
        await sender.limiter.reserve(chat, max_wait=1000)
    telegram = FakeTelegram(clock)

    await sender(telegram, bot, send(1))

    assert telegram.times == pytest.approx([START + 5.0], abs=0.05)


async def test_a_chat_wait_behind_a_busy_bot_counts_only_the_chat_part(sender, clock, bot):
    for chat in range(100, 225):  # the bot is busy for 5 s
        await sender.limiter.reserve(chat, max_wait=1000)
    telegram = FakeTelegram(clock)
    await sender(telegram, bot, send(1))  # slept 5 s for the calendar

    await sender(telegram, bot, send(1))

    assert telegram.times == pytest.approx([START + 5.0, START + 6.0], abs=0.05)


async def test_a_send_that_wakes_late_for_its_slot_takes_another_instead_of_going_at_once(make_sender, clock, bot):
    stalls = [0.1]  # the process stalls 100 ms once, during the first wait

    async def sleep(seconds: float) -> None:
        clock.now += seconds + (stalls.pop() if stalls else 0.0)

    sender = make_sender(sleep=sleep)
    for chat in range(100, 125):  # the bot is busy for 1 s
        await sender.limiter.reserve(chat, max_wait=1000)
    telegram = FakeTelegram(clock)

    await sender(telegram, bot, send(1))

    assert len(telegram.calls) == 1
    assert telegram.times[0] == pytest.approx(START + 2.0), "not at 1.1 s, next to the sends after it"


async def test_a_send_that_slept_into_a_pause_begun_meanwhile_waits_for_its_end(make_sender, clock, bot):
    other_process = make_sender()
    flood = [5.0]

    async def sleep(seconds: float) -> None:
        if flood:  # while this send sleeps for its slot, another process meets a 429
            await other_process.limiter.pause(flood.pop())
        clock.now += seconds

    sender = make_sender(sleep=sleep)
    for chat in range(100, 125):  # the bot is busy for 1 s: this send sleeps
        await sender.limiter.reserve(chat, max_wait=1000)
    telegram = FakeTelegram(clock)

    await sender(telegram, bot, send(1))

    assert len(telegram.calls) == 1
    assert telegram.times[0] >= START + 5.0, "not at 1 s, inside the pause"


async def test_pauses_met_at_every_wake_become_a_transient_error(make_sender, make_limiter, clock, bot):
    limiter = make_limiter()

    async def sleep(seconds: float) -> None:
        await limiter.pause(seconds + 5.0)  # every wait ends inside a new pause
        clock.now += seconds

    sender = make_sender(sleep=sleep, limiter=limiter)
    await limiter.reserve(100, max_wait=1000)
    telegram = FakeTelegram(clock)

    with pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert telegram.calls == []
    assert caught.value.retry_after == pytest.approx(5.0, abs=0.05)


async def test_a_send_late_by_less_than_the_margin_goes_out(make_sender, clock, bot):
    async def sleep(seconds: float) -> None:
        clock.now += seconds + 0.005

    sender = make_sender(sleep=sleep)
    await sender.limiter.reserve(100, max_wait=1000)
    telegram = FakeTelegram(clock)

    await sender(telegram, bot, send(1))

    assert telegram.times == pytest.approx([START + 0.04 + 0.005])


def test_create_bot_takes_the_chat_inline_wait_from_settings(settings, make_limiter):
    settings.TELEGRAM_MAX_CHAT_INLINE_WAIT_SECONDS = 2.5

    bot = create_bot(limiter=make_limiter())

    assert sender_of(bot).max_chat_inline_wait == 2.5


@pytest.mark.parametrize(
    "description",
    [
        "Forbidden: bot was blocked by the user",
        "Forbidden: user is deactivated",
        "Forbidden: bot was kicked from the group chat",
    ],
)
async def test_an_unreachable_recipient_is_recorded_once_and_reported_as_blocked(
    sender, clock, bot, blocked, description
):
    telegram = FakeTelegram(clock, script=[forbidden(description)])

    with pytest.raises(RecipientBlocked) as caught:
        await sender(telegram, bot, send(77))

    assert blocked.chat_ids == [77]
    assert caught.value.code == "recipient_blocked"
    assert len(telegram.calls) == 1


async def test_other_forbidden_errors_are_not_treated_as_blocked(sender, clock, bot, blocked):
    telegram = FakeTelegram(clock, script=[forbidden("Forbidden: bot can't send messages to bots")])

    with pytest.raises(TelegramForbiddenError):
        await sender(telegram, bot, send(77))

    assert blocked.chat_ids == []


@pytest.mark.parametrize(
    "error",
    [
        TelegramServerError(method=send(), message="Internal Server Error"),
        TelegramServerError(method=send(), message="Bad Gateway"),
        TelegramNetworkError(method=send(), message="Request timeout error"),
    ],
    ids=["500", "502", "timeout"],
)
async def test_server_and_network_errors_become_transient_errors(sender, clock, bot, error):
    telegram = FakeTelegram(clock, script=[error])

    with pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert caught.value.code == "transient"
    assert len(telegram.calls) == 1, "the task retries, not the sender"


async def test_a_reply_that_is_not_json_becomes_a_transient_error_without_the_page(sender, clock, bot):
    page = "<html>502 Bad Gateway</html>"
    error = ClientDecodeError("Failed to decode object", ValueError("Expecting value"), page)
    telegram = FakeTelegram(clock, script=[error])

    with pytest.raises(TransientError) as caught:
        await sender(telegram, bot, send(1))

    assert page not in str(caught.value)


async def test_a_file_too_large_is_not_retried(sender, clock, bot):
    method = SendDocument(chat_id=1, document="file-id")
    telegram = FakeTelegram(clock, script=[TelegramEntityTooLarge(method=method, message="Request Entity Too Large")])

    with pytest.raises(TelegramEntityTooLarge):
        await sender(telegram, bot, method)


@pytest.mark.parametrize(
    "method",
    [
        SendChatAction(chat_id=1, action="typing"),
        AnswerCallbackQuery(callback_query_id="q"),
        AnswerPreCheckoutQuery(pre_checkout_query_id="p", ok=True),
        GetMe(),
        EditMessageText(inline_message_id="inline", text="edited"),
    ],
    ids=lambda method: method.__api_method__,
)
async def test_methods_that_post_nothing_to_a_chat_are_not_limited(sender, clock, bot, method):
    telegram = FakeTelegram(clock)

    for _ in range(3):
        await sender(telegram, bot, method)
    await sender(telegram, bot, send(1))

    assert telegram.times == [START] * 4, "no waits, and the chat's slot is still free"


def test_every_send_like_aiogram_method_is_classified():
    """A newer aiogram adding a send/edit method fails here until someone decides about it."""
    names = {
        member.__api_method__
        for member in vars(aiogram.methods).values()
        if inspect.isclass(member) and issubclass(member, TelegramMethod) and member is not TelegramMethod
    }
    send_like = {name for name in names if name.startswith(("send", "forward", "copy", "edit", "stop"))}

    assert send_like - LIMITED_METHODS - UNLIMITED_SEND_LIKE_METHODS == set()
    assert (LIMITED_METHODS | UNLIMITED_SEND_LIKE_METHODS) - names == set(), "no misspelled names"


def _leaks(text: str) -> bool:
    token = settings.TELEGRAM_BOT_TOKEN
    return token in text or token.split(":", 1)[1] in text


async def test_the_token_stays_out_of_errors_and_logs(sender, clock, bot, caplog):
    url = f"{settings.TELEGRAM_API_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage"
    raw = TelegramNetworkError(method=send(), message=f"TooManyRedirects: 0, message='', url='{url}'")
    assert _leaks(str(raw)), "the raw aiogram error does carry the token"
    telegram = FakeTelegram(clock, script=[retry_after(1), forbidden("Forbidden: bot was blocked by the user")])
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RecipientBlocked) as blocked_error:
        await sender(telegram, bot, send(5))
    with pytest.raises(TransientError) as network_error:
        await sender(FakeTelegram(clock, script=[raw]), bot, send(5))

    for error in (blocked_error.value, network_error.value):
        assert not _leaks(str(error))
        assert not _leaks(repr(error))
        assert error.__cause__ is None
        assert error.__suppress_context__
    assert caplog.records, "the sender logged the 429, the block and the failure"
    assert not _leaks(caplog.text)
    assert not _leaks(" ".join(str(vars(record)) for record in caplog.records))


async def test_a_real_session_error_quoting_the_url_does_not_leak_the_token(make_limiter, clock):
    """aiohttp's TooManyRedirects quotes the request URL, token included."""

    async def redirect_forever(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(request.url))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect_forever)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    session.middleware(TelegramSender(limiter=make_limiter(), max_inline_wait=10.0, sleep=clock.sleep))
    bot = Bot(settings.TELEGRAM_BOT_TOKEN, session=session)
    try:
        with pytest.raises(TransientError) as caught:
            await bot.send_message(chat_id=1, text="hi")
    finally:
        await bot.session.close()
        await runner.cleanup()

    assert "TooManyRedirects" in str(caught.value)
    assert not _leaks(str(caught.value))


async def test_create_bot_sends_every_call_through_the_sender(make_limiter, clock):
    bot = create_bot(limiter=make_limiter())
    sender_of(bot).sleep = clock.sleep
    telegram = FakeTelegram(clock)
    bot.session.make_request = telegram  # type: ignore[method-assign]
    try:
        await bot.send_message(chat_id=1, text="first")
        await bot.send_message(chat_id=1, text="second")
    finally:
        await bot.session.close()

    assert telegram.times == pytest.approx([START, START + 1.0])
    assert bot.default.parse_mode == "HTML"
    assert bot.session.api.base.startswith(f"{settings.TELEGRAM_API_URL}/bot")


async def test_bot_session_closes_the_limiter_it_made(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path
    closed: list[bool] = []

    async with bot_session() as bot:
        limiter = sender_of(bot).limiter
        original_close = limiter.close

        async def close() -> None:
            closed.append(True)
            await original_close()

        limiter.close = close  # type: ignore[method-assign]

    assert closed == [True]


async def test_bot_session_leaves_a_given_limiter_open(make_limiter):
    limiter = make_limiter()
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    limiter.close = close
    async with bot_session(limiter=limiter) as bot:
        assert sender_of(bot).limiter is limiter

    assert closed == []


def test_run_with_bot_runs_the_coroutine_from_sync_code_with_a_configured_bot(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path
    seen: list[Bot] = []

    async def work(bot: Bot) -> int:
        seen.append(bot)
        return bot.id

    assert run_with_bot(work) == int(settings.TELEGRAM_BOT_TOKEN.split(":")[0])
    assert isinstance(sender_of(seen[0]), TelegramSender)


async def test_the_default_on_blocked_records_the_user_state(monkeypatch):
    """Calls the accounts service with the chat id (the database side is tested with accounts)."""
    import threading

    from nanobanana.accounts import services

    calls: list[tuple[int, bool]] = []

    def fake_user_mark_blocked(*, telegram_id: int) -> None:
        calls.append((telegram_id, threading.current_thread() is threading.main_thread()))

    monkeypatch.setattr(services, "user_mark_blocked", fake_user_mark_blocked)

    await mark_user_blocked(31337)

    assert calls == [(31337, False)], "called once, off the event loop thread (the ORM is sync-only)"
