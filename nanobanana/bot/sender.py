"""The one way out to Telegram: every Bot API call of every process.

`create_bot()` builds the aiogram `Bot` with `TelegramSender` registered as a
request middleware, so handlers (`message.answer()`), delivery tasks
(`bot.send_document()`) and everything else go through it. The sender:

- spaces sends with the shared `TelegramLimiter` (per chat, per group, per
  bot). A wait for the bot's calendar (the bot is at its rate, or paused) is
  slept in-process up to TELEGRAM_MAX_INLINE_WAIT_SECONDS: every send waits
  for it anyway. Inside `chat_turns()` (tasks that send one message a run),
  a wait caused by the send's own chat (sends ahead of it to the same chat)
  is slept only up to TELEGRAM_MAX_CHAT_INLINE_WAIT_SECONDS (one send
  ahead); beyond either, nothing is sent and
  `TransientError(retry_after=...)` lets the Celery task retry instead of
  holding a worker slot. A chat-caused refusal carries the send's promised
  turn, so sends deferred together come back one chat interval apart
  (docs/decisions/406-chat-turns-for-deferred-sends.md);
- sends at its slot or not at all: a send that wakes more than
  `LATE_SEND_MARGIN` after its slot (a stalled process) takes a new slot
  instead of going out at once, so a stall never bunches sends into one
  second (the calendar leaves 34 ms of slack at 29/s);
- on 429 pauses every send of the bot in every process, then retries; a
  send that slept for its slot looks for a pause begun meanwhile and, if
  one holds, takes a slot after it instead of going out into it;
- turns "bot was blocked / user deactivated / bot kicked" into a user state
  (`on_blocked`) and `RecipientBlocked`;
- turns network errors, 5xx and undecodable replies into `TransientError`;
- never lets the bot token reach a log line or an exception message.

Methods limited (they post or edit a message in a chat, keyed by `chat_id`):
see `LIMITED_METHODS`. Everything else passes straight through: chat actions,
message drafts, callback/pre-checkout/inline answers (which have deadlines),
reads, deletions, reactions, chat administration, edits of inline messages
(no chat id). Telegram's documented limits are about messages; the 429
handling still covers any method Telegram throttles.
See docs/decisions/402-sender-request-middleware.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Final, TypeVar

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

from nanobanana.bot.limiter import TelegramLimiter, limiter_from_settings
from nanobanana.core.errors import AppError, TransientError
from nanobanana.core.logging import redact

logger = logging.getLogger(__name__)

T = TypeVar("T")
OnBlocked = Callable[[int], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

# Bot API methods that put or change a message in a chat: Telegram's
# 1/s per chat, 20/min per group and 30/s per bot apply to these.
LIMITED_METHODS: Final = frozenset(
    {
        "sendMessage",
        "sendRichMessage",
        "sendPhoto",
        "sendAudio",
        "sendDocument",
        "sendVideo",
        "sendAnimation",
        "sendVoice",
        "sendVideoNote",
        "sendLivePhoto",
        "sendPaidMedia",
        "sendMediaGroup",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "sendChecklist",
        "sendDice",
        "sendSticker",
        "sendInvoice",
        "sendGame",
        "sendGift",
        "forwardMessage",
        "forwardMessages",
        "copyMessage",
        "copyMessages",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
        "editMessageLiveLocation",
        "editMessageChecklist",
        "stopMessageLiveLocation",
        "stopPoll",
    }
)
# Send/edit-looking methods deliberately left unlimited: nothing is posted
# (chat action, 30-second drafts, ephemeral messages), or they administer the
# chat rather than post to it. Kept here so a test can tell when a newer
# aiogram adds a method nobody has decided about.
UNLIMITED_SEND_LIKE_METHODS: Final = frozenset(
    {
        "sendChatAction",
        "sendMessageDraft",
        "sendRichMessageDraft",
        "sendChatJoinRequestWebApp",
        "editEphemeralMessageText",
        "editEphemeralMessageCaption",
        "editEphemeralMessageMedia",
        "editEphemeralMessageReplyMarkup",
        "editChatInviteLink",
        "editChatSubscriptionInviteLink",
        "editForumTopic",
        "editGeneralForumTopic",
        "editStory",
        "editUserStarSubscription",
    }
)
# Telegram's descriptions for a recipient we can no longer reach.
_BLOCKED_MARKERS: Final = ("bot was blocked by the user", "user is deactivated", "bot was kicked")
DEFAULT_MAX_ATTEMPTS: Final = 5
# One private-chat interval: a send with one send ahead in its chat waits
# in-process; a longer queue in the chat gives the worker slot back.
DEFAULT_MAX_CHAT_INLINE_WAIT: Final = 1.0
# How late after its slot a send may still go out. At 29/s any 31 slots span
# 1.034 s: a send more than 34 ms late could be the 31st in a second at
# Telegram. 10 ms leaves the rest for the way from here to Telegram.
LATE_SEND_MARGIN: Final = 0.010
# New slots a late send may take before it goes anyway (a machine that slow
# would miss every slot).
LATE_SEND_RETRIES: Final = 3
# A cap on the in-process wait of the calls made inside
# `inline_wait_at_most()`; None means the sender's own.
_inline_wait: ContextVar[float | None] = ContextVar("telegram_inline_wait", default=None)


# Whether a send whose own chat has more than one send ahead gives the worker
# slot back with a promised turn (`chat_turns()`) instead of sleeping.
_chat_turns: ContextVar[bool] = ContextVar("telegram_chat_turns", default=False)


@contextmanager
def chat_turns() -> Iterator[None]:
    """Calls made inside sleep in-process for their chat only up to
    TELEGRAM_MAX_CHAT_INLINE_WAIT_SECONDS; a longer chat queue raises
    `TransientError(retry_after=<the send's promised turn>)` before anything
    is sent. Only for a task that sends one message a run (a status edit, a
    notice to one user), so its retry repeats nothing. A handler or a
    delivery sends several messages in a row: refused halfway, its retry
    would send the first ones again, so outside this block a chat wait is
    slept up to the sender's whole inline wait."""
    token = _chat_turns.set(True)
    try:
        yield
    finally:
        _chat_turns.reset(token)


@contextmanager
def inline_wait_at_most(seconds: float) -> Iterator[None]:
    """Calls made inside wait at most `seconds` in-process for their slot;
    a later slot raises `TransientError(retry_after=...)` instead. For sends
    that may come late or not at all (a status message's progress), so they
    never hold a worker slot while Telegram's limits are busy."""
    token = _inline_wait.set(seconds)
    try:
        yield
    finally:
        _inline_wait.reset(token)


class RecipientBlocked(AppError):
    """The recipient blocked the bot, was deleted, or removed the bot from the
    chat. Already recorded through `on_blocked`; callers stop quietly."""

    code = "recipient_blocked"

    def __init__(self, chat_id: int | str) -> None:
        super().__init__(f"recipient {chat_id} cannot be reached")
        self.chat_id = chat_id


async def mark_user_blocked(chat_id: int) -> None:
    """Default `on_blocked`: record the user state in the database."""
    from nanobanana.accounts.services import user_mark_blocked

    await sync_to_async(user_mark_blocked)(telegram_id=chat_id)


def limited_chat_id(method: TelegramMethod[Any]) -> int | str | None:
    """The chat whose limits a call must respect, or None when it is not limited."""
    if method.__api_method__ not in LIMITED_METHODS:
        return None
    chat_id = getattr(method, "chat_id", None)
    return chat_id if isinstance(chat_id, int | str) else None


def is_recipient_gone(error: TelegramForbiddenError) -> bool:
    description = error.message.lower()
    return any(marker in description for marker in _BLOCKED_MARKERS)


# aiogram decodes every reply as `Response[method.__returning__]`, and pydantic
# keeps parametrized models in a weak cache only: once nothing refers to the
# class, the next reply builds it again (about 3 ms of CPU; 49 builds of
# `Response[Message]` in 19 end-to-end tests, and a tenth of a handler's CPU
# in the overhead benchmark). Holding each one here keeps that cache warm.
_RESPONSE_TYPES: dict[Any, Any] = {}


def _keep_response_type(method: TelegramMethod[Any]) -> None:
    returning = method.__returning__
    if returning not in _RESPONSE_TYPES:
        _RESPONSE_TYPES[returning] = Response[returning]  # type: ignore[valid-type]


class TelegramSender(BaseRequestMiddleware):
    """aiogram request middleware applying our limits and error policy to every call."""

    def __init__(
        self,
        *,
        limiter: TelegramLimiter,
        on_blocked: OnBlocked = mark_user_blocked,
        max_inline_wait: float,
        max_chat_inline_wait: float = DEFAULT_MAX_CHAT_INLINE_WAIT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        owns_limiter: bool = False,
    ) -> None:
        self.limiter = limiter
        self.owns_limiter = owns_limiter
        self.on_blocked = on_blocked
        self.max_inline_wait = max_inline_wait
        self.max_chat_inline_wait = max_chat_inline_wait
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.monotonic = monotonic

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = method.__api_method__
        _keep_response_type(method)
        chat_id = limited_chat_id(method)
        for attempt in range(1, self.max_attempts + 1):
            if chat_id is not None:
                await self._wait_for_slot(name, chat_id)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                retry_after = float(error.retry_after)
                await self.limiter.pause(retry_after)
                logger.warning(
                    "telegram flood control: every send paused",
                    extra={"telegram_method": name, "chat_id": chat_id, "retry_after": retry_after, "attempt": attempt},
                )
                if attempt == self.max_attempts or retry_after > self.max_inline_wait:
                    raise TransientError(
                        f"{name}: Telegram flood control, retry in {retry_after:g}s", retry_after=retry_after
                    ) from None
                if chat_id is None:
                    # Limited calls wait for the pause through the limiter.
                    await self.sleep(retry_after)
            except TelegramForbiddenError as error:
                target = getattr(method, "chat_id", None)
                if not is_recipient_gone(error) or not isinstance(target, int | str):
                    raise
                logger.info("telegram recipient gone", extra={"telegram_method": name, "chat_id": target})
                if isinstance(target, int):
                    await self.on_blocked(target)
                raise RecipientBlocked(target) from None
            except TelegramEntityTooLarge:
                # A 413 subclasses the network error but retrying cannot help:
                # the caller sends a link instead.
                raise
            except (TelegramNetworkError, TelegramServerError) as error:
                # aiohttp errors can quote the request URL, which holds the token.
                detail = _scrub(str(error), bot.token)
                logger.warning(
                    "telegram request failed, will retry",
                    extra={"telegram_method": name, "chat_id": chat_id, "error_type": type(error).__name__},
                )
                raise TransientError(f"{name}: {type(error).__name__}: {detail}") from None
            except ClientDecodeError as error:
                # Not JSON: typically a proxy's error page in front of a local
                # Bot API server. The page itself is left out of the message.
                logger.warning(
                    "telegram reply was not valid JSON, will retry",
                    extra={"telegram_method": name, "chat_id": chat_id},
                )
                raise TransientError(f"{name}: {_scrub(error.message, bot.token)}") from None
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    async def _wait_for_slot(self, name: str, chat_id: int | str) -> None:
        override = _inline_wait.get()
        max_wait = self.max_inline_wait if override is None else min(override, self.max_inline_wait)
        for late in range(LATE_SEND_RETRIES + 1):
            # The slot is at least `wait` after this moment, so lateness
            # measured from here is never less than the real one.
            asked_at = self.monotonic()
            max_chat_wait = self.max_chat_inline_wait if _chat_turns.get() else None
            reservation = await self.limiter.reserve(chat_id, max_wait=max_wait, max_chat_wait=max_chat_wait)
            if not reservation.granted:
                reason = "this chat's turn" if reservation.turn else "next send slot"
                raise TransientError(
                    f"{name} to chat {chat_id}: {reason} in {reservation.wait:.1f}s", retry_after=reservation.wait
                )
            if reservation.wait > 0:
                await self.sleep(reservation.wait)
                # A 429 met by another send while this one slept pauses the
                # bot, and this slot, taken before, may lie inside the pause.
                paused = await self.limiter.paused_for()
                if paused > 0:
                    if late == LATE_SEND_RETRIES:
                        raise TransientError(
                            f"{name} to chat {chat_id}: Telegram flood control, retry in {paused:.1f}s",
                            retry_after=paused,
                        )
                    logger.info(
                        "telegram send woke inside a flood-control pause, taking a slot after it",
                        extra={"telegram_method": name, "chat_id": chat_id, "paused_ms": round(paused * 1000)},
                    )
                    continue
            lateness = self.monotonic() - asked_at - reservation.wait
            if lateness <= LATE_SEND_MARGIN or late == LATE_SEND_RETRIES:
                return
            # The missed slot stays taken (unused); the chat's own spacing
            # now counts from it, so the new slot is up to an interval out.
            logger.info(
                "telegram send woke late for its slot, taking another",
                extra={"telegram_method": name, "chat_id": chat_id, "late_ms": round(lateness * 1000)},
            )


def _scrub(text: str, token: str) -> str:
    """Remove the token (and its secret half) as well as every configured secret."""
    for secret in (token, token.partition(":")[2]):
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    return redact(text)


def create_bot(*, limiter: TelegramLimiter | None = None, on_blocked: OnBlocked | None = None) -> Bot:
    """A Bot whose every call goes through `TelegramSender`.

    Without `limiter` one is made from settings and owned by the bot:
    `close_bot()` (or `bot_session()`) closes it with the HTTP session.
    """
    sender = TelegramSender(
        limiter=limiter if limiter is not None else limiter_from_settings(),
        on_blocked=on_blocked or mark_user_blocked,
        max_inline_wait=float(settings.TELEGRAM_MAX_INLINE_WAIT_SECONDS),
        max_chat_inline_wait=float(settings.TELEGRAM_MAX_CHAT_INLINE_WAIT_SECONDS),
        owns_limiter=limiter is None,
    )
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.TELEGRAM_API_URL, is_local=settings.TELEGRAM_API_LOCAL)
    )
    session.middleware(sender)
    return Bot(settings.TELEGRAM_BOT_TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))


def sender_of(bot: Bot) -> TelegramSender:
    """The sender registered on a bot made by `create_bot()`."""
    for middleware in bot.session.middleware:
        if isinstance(middleware, TelegramSender):
            return middleware
    raise LookupError("this bot was not made by create_bot()")


async def close_bot(bot: Bot) -> None:
    """Close the bot's HTTP session and the limiter it owns."""
    try:
        await bot.session.close()
    finally:
        sender = sender_of(bot)
        if sender.owns_limiter:
            await sender.limiter.close()


@asynccontextmanager
async def bot_session(
    *, limiter: TelegramLimiter | None = None, on_blocked: OnBlocked | None = None
) -> AsyncIterator[Bot]:
    """`async with bot_session() as bot:` - a bot closed on the way out."""
    bot = create_bot(limiter=limiter, on_blocked=on_blocked)
    try:
        yield bot
    finally:
        await close_bot(bot)


def run_with_bot(coro_factory: Callable[[Bot], Awaitable[T]]) -> T:
    """Run `coro_factory(bot)` from sync code (Celery tasks) with a fresh bot.

    `async_to_sync` keeps `sync_to_async` calls inside (Django ORM) on the
    calling thread, so they see the task's database connection.
    """

    async def run() -> T:
        async with bot_session() as bot:
            return await coro_factory(bot)

    return async_to_sync(run)()
