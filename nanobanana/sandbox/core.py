"""The emulator's state and its single entry point for Bot API calls."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from nanobanana.sandbox.errors import ApiError, bad_request, blocked, method_not_found, too_many_requests, unauthorized
from nanobanana.sandbox.faults import MALFORMED_BODY, Fault, FaultKind
from nanobanana.sandbox.limits import RateLimiter, RateLimits
from nanobanana.sandbox.params import Params
from nanobanana.sandbox.registry import METHODS
from nanobanana.sandbox.state import (
    ApiCall,
    BotInfo,
    CallbackQuery,
    Notice,
    PreCheckoutQuery,
    SimUser,
    StoredFile,
    StoredMessage,
    WebhookConfig,
)

T = TypeVar("T")

# Not a secret: the emulator accepts whatever token it is constructed with.
DEFAULT_TOKEN = "123456:TEST"  # noqa: S105 - an obviously fake token for the emulator
DEFAULT_RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class ApiResponse:
    """What the HTTP layer sends back: a JSON body, or raw bytes for a malformed-reply fault."""

    status: int
    body: dict[str, Any] | bytes

    @property
    def json(self) -> dict[str, Any]:
        assert isinstance(self.body, dict), "the reply was not JSON (malformed fault)"
        return self.body

    @property
    def ok(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("ok"))

    @property
    def result(self) -> Any:
        return self.json.get("result")


class TelegramCore:
    """State, locking, loop binding and call dispatch. See `FakeTelegram` for the public face."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        username: str = "nanobanana_sandbox_bot",
        first_name: str = "NanoBanana",
        local_mode: bool = False,
        limits: RateLimits | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        webhook_timeout: float = 10.0,
        auto_create_chats: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        first_update_id: int = 100_000_001,
    ) -> None:
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.bot = BotInfo(id=bot_id, username=username, first_name=first_name, token=token)
        self.local_mode = local_mode
        self.auto_create_chats = auto_create_chats
        self.clock = clock
        self.wall_clock = wall_clock
        self.limiter = RateLimiter(limits if limits is not None else RateLimits(), clock)
        self.webhook = WebhookConfig(url=webhook_url or "", secret_token=webhook_secret)
        self.webhook_retry_delays = webhook_retry_delays or (1.0,)
        self.webhook_timeout = webhook_timeout

        self.users: dict[int, SimUser] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.chat_messages: dict[int, dict[int, StoredMessage]] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self.files: dict[str, StoredFile] = {}
        self.photo_size_cache: dict[str, list[dict[str, Any]]] = {}
        self.pending: list[dict[str, Any]] = []
        self._update_ids = itertools.count(first_update_id)
        self.call_log: list[ApiCall] = []
        self.commands: dict[str, list[dict[str, str]]] = {}
        self.invoices: dict[tuple[int, int], dict[str, Any]] = {}
        self.callback_queries: dict[str, CallbackQuery] = {}
        self.pre_checkout_queries: dict[str, PreCheckoutQuery] = {}
        # Stars payments made: telegram_payment_charge_id -> user_id, amount, refunded.
        self.star_charges: dict[str, dict[str, Any]] = {}
        self.blocked_users: set[int] = set()
        self.faults: list[Fault] = []
        self.chat_actions: dict[int, tuple[str, float]] = {}
        self.notices: list[Notice] = []
        self.chat_resets: dict[int, int] = {}  # chat id -> seq of its last reset
        self.last_poll_time: float | None = None  # wall time of the last getUpdates

        self.seq = 0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivery_task: asyncio.Task[None] | None = None
        # One HTTP client for every webhook delivery, made on the loop at the
        # first one: a client per burst of updates built a new TLS context
        # each time (half the sandbox's CPU under 20 updates a second).
        self._webhook_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._background: Any = None  # fake.sync's private loop, when no server loop is bound

    # --- concurrency -------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Held while state changes; readers in another thread take it too."""
        return self._lock

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make `loop` the one that runs webhook delivery and simulated users (the server's loop)."""
        self._loop = loop

    async def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the bound loop, binding the current one if none is usable."""
        current = asyncio.get_running_loop()
        loop = self._loop
        if loop is None or loop.is_closed() or (loop is not current and not loop.is_running()):
            self._loop = loop = current
        if loop is current:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def changed(self) -> int:
        """Note a change: bump `seq` and wake everything waiting for one."""
        with self._lock:
            self.seq += 1
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)
        return self.seq

    async def next_change(self, seconds: float) -> bool:
        """Wait until `changed()` is called or `seconds` pass; True when something changed."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            return False
        return True

    def new_id(self, prefix: str = "") -> str:
        return f"{prefix}{next(self._ids)}"

    # --- chats, messages, files -------------------------------------------

    def user(self, user_id: int = 10001, **fields: Any) -> SimUser:
        """Get or create a simulated user (and so their private chat); `fields` update it."""
        with self._lock:
            existing = self.users.get(user_id)
            if existing is None:
                existing = self.users[user_id] = SimUser(id=user_id, **fields)
            else:
                for key, value in fields.items():
                    setattr(existing, key, value)
            self.chat_messages.setdefault(user_id, {})
            return existing

    def group(self, chat_id: int, title: str = "Test group") -> dict[str, Any]:
        """Get or create a group chat (negative id)."""
        with self._lock:
            chat = self.groups.setdefault(chat_id, {"id": chat_id, "type": "supergroup", "title": title})
            self.chat_messages.setdefault(chat_id, {})
            return chat

    def chat_dict(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self.groups:
            return dict(self.groups[chat_id])
        if chat_id in self.users:
            return self.users[chat_id].private_chat()
        if self.auto_create_chats:
            return self.user(chat_id).private_chat() if chat_id > 0 else dict(self.group(chat_id))
        raise bad_request("chat not found")

    def store_message(self, chat_id: int, data: dict[str, Any], *, outgoing: bool) -> StoredMessage:
        """Give `data` the next message id in the chat and keep it."""
        with self._lock:
            counter = self._message_ids.setdefault(chat_id, itertools.count(1))
            data = {"message_id": next(counter), **data}
            message = StoredMessage(data=data, outgoing=outgoing)
            self.chat_messages.setdefault(chat_id, {})[message.message_id] = message
            message.seq = self.changed()
            return message

    def find_message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        message = self.chat_messages.get(chat_id, {}).get(message_id)
        return None if message is None or message.deleted else message

    def store_file(
        self, content: bytes, *, folder: str, extension: str, mime_type: str | None = None, file_name: str | None = None
    ) -> StoredFile:
        with self._lock:
            number = next(self._ids)
            unique = hashlib.sha256(content).hexdigest()[:16]
            stored = StoredFile(
                file_id=f"SBX{number:06d}{unique}",
                file_unique_id=f"U{unique}",
                file_path=f"{folder}/file_{number}{extension}",
                content=content,
                mime_type=mime_type,
                file_name=file_name,
            )
            self.files[stored.file_id] = stored
            return stored

    # --- the entry point ---------------------------------------------------

    async def call_api(
        self, method: str, params: Params | dict[str, Any] | None = None, *, token: str | None = None
    ) -> ApiResponse:
        """Handle one Bot API call as Telegram would; `token=None` skips the token check."""
        if not isinstance(params, Params):
            params = Params(params or {})
        return await self._on_loop(self._call(method, params, token))

    async def _call(self, method: str, params: Params, token: str | None) -> ApiResponse:
        call = ApiCall(method=method, params=params.summary(), time=self.wall_clock())
        try:
            if token is not None and token != self.bot.token:
                raise unauthorized()
            handler = METHODS.get(method.lower())
            if handler is None:
                raise method_not_found()
            fault = self._take_fault(method, params)
            if fault is not None:
                if fault.kind == "timeout":
                    await asyncio.sleep(fault.seconds)
                elif fault.kind == "malformed":
                    call.status, call.error = 200, "malformed reply (injected)"
                    return ApiResponse(200, MALFORMED_BODY)
                else:
                    error = fault.error()
                    assert error is not None
                    if error.retry_after:
                        self.limiter.start_penalty(error.retry_after)
                    raise error
            penalty = self.limiter.penalty_left()
            if penalty:
                raise too_many_requests(penalty)
            result = await handler(self, params)  # type: ignore[arg-type]
        except ApiError as error:
            call.status, call.error = error.status, error.description
            return ApiResponse(error.status, error.body())
        finally:
            with self._lock:
                self.call_log.append(call)
            self.changed()
        call.result = result
        return ApiResponse(200, {"ok": True, "result": result})

    def admit(self, chat_id: int, count: int = 1) -> None:
        """Checks for a message sent to or edited in a chat: blocked users, then flood limits."""
        if chat_id in self.blocked_users:
            raise blocked()
        retry_after = self.limiter.acquire(chat_id, count)
        if retry_after:
            raise too_many_requests(retry_after)

    async def complete_payment(self, query: PreCheckoutQuery) -> None:
        """Send the successful_payment message after an approved pre-checkout (see UserSimulation)."""
        raise NotImplementedError

    # --- faults ------------------------------------------------------------

    def inject(
        self,
        error: FaultKind,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        times: int | None = 1,
        retry_after: int = 1,
        seconds: float = 5.0,
        description: str | None = None,
    ) -> Fault:
        """Make the next `times` matching calls fail with `error` (None: until `clear_faults`).

        A `retry_after` fault answers 429 once per hit; it starts the bot-wide
        penalty too, as Telegram's does, unless the limits disable that.
        """
        fault = Fault(kind=error, method=method, chat_id=chat_id, times=times, retry_after=retry_after, seconds=seconds)
        if description is not None:
            fault.description = description
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.limiter.penalty_until = 0.0

    def block(self, user_id: int) -> None:
        """The user blocks the bot: every send to them answers 403."""
        with self._lock:
            self.blocked_users.add(user_id)

    def unblock(self, user_id: int) -> None:
        with self._lock:
            self.blocked_users.discard(user_id)

    def _take_fault(self, method: str, params: Params) -> Fault | None:
        raw_chat = params.values.get("chat_id")
        try:
            chat_id = int(raw_chat) if raw_chat not in (None, "") else None
        except (TypeError, ValueError):
            chat_id = None
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, chat_id):
                    fault.hits += 1
                    return fault
        return None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
