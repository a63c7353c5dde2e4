"""`FakeTelegram`: the public face of the emulator for tests and the chat page."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

# Imported for their side effect: each registers its Bot API methods.
from nanobanana.sandbox import edits, messages, misc  # noqa: F401
from nanobanana.sandbox.state import ApiCall, StoredMessage
from nanobanana.sandbox.users import UserRef, UserSimulation

T = TypeVar("T")


class FakeTelegram(UserSimulation):
    """An in-memory Telegram Bot API for one bot.

    Serve it over HTTP with `create_app(fake)` (or `run_sandbox(fake)` in
    tests) and point aiogram at the base URL; drive users with `send_text`,
    `press_button`, ...; assert with `messages_to`, `last_message`, `calls`.
    Async methods may be awaited from any loop; sync code uses `fake.sync`.
    """

    # --- readers -----------------------------------------------------------

    def messages_to(self, chat_id: int) -> list[StoredMessage]:
        """Messages the bot sent to a chat and has not deleted, oldest first."""
        with self.lock:
            return [m for m in self.chat_messages.get(chat_id, {}).values() if m.outgoing and not m.deleted]

    def history(self, chat_id: int) -> list[StoredMessage]:
        """Every message in the chat from both sides, deleted ones included, oldest first."""
        with self.lock:
            return list(self.chat_messages.get(chat_id, {}).values())

    def last_message(self, chat_id: int) -> StoredMessage | None:
        """The bot's latest message in the chat, if any."""
        sent = self.messages_to(chat_id)
        return sent[-1] if sent else None

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Logged Bot API calls, all or of one method (case-insensitive)."""
        with self.lock:
            return [c for c in self.call_log if method is None or c.method.lower() == method.lower()]

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id].content

    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None:
        query = self.callback_queries.get(callback_query_id)
        return None if query is None else query.answer

    def pre_checkout_answer(self, pre_checkout_query_id: str) -> dict[str, Any] | None:
        query = self.pre_checkout_queries.get(pre_checkout_query_id)
        return None if query is None else query.answer

    def chat_action(self, chat_id: int, within: float = 5.0) -> str | None:
        """The chat action the bot set in the last `within` seconds (Telegram shows it ~5 s)."""
        action = self.chat_actions.get(chat_id)
        if action is None or self.wall_clock() - action[1] > within:
            return None
        return action[0]

    # --- waiting -----------------------------------------------------------

    # A timeout argument (not asyncio.timeout) keeps test code short: `await fake.wait_for(check, timeout=2)`.
    async def wait_for(
        self,
        condition: Callable[[], T | None],
        *,
        timeout: float = 5.0,
        interval: float = 0.05,
    ) -> T:
        """Wait until `condition()` is truthy and return its value; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                value = condition()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            await self.next_change(min(left, interval))

    async def wait_for_message(
        self,
        chat_id: int,
        *,
        after: int | None = None,
        timeout: float = 5.0,
    ) -> StoredMessage:
        """The first bot message in the chat with a message_id above `after` (default: the latest now)."""
        if after is None:
            latest = self.history(chat_id)
            after = latest[-1].message_id if latest else 0
        limit = after

        def arrived() -> StoredMessage | None:
            return next((m for m in self.messages_to(chat_id) if m.message_id > limit), None)

        return await self.wait_for(arrived, timeout=timeout)

    # --- chat page helpers -------------------------------------------------

    def reset_chat(self, chat_id: int) -> None:
        """Forget a chat's messages (the chat page's "reset" button); the bot's own state is untouched."""
        with self.lock:
            for message in self.chat_messages.get(chat_id, {}).values():
                message.deleted = True
            self.chat_actions.pop(chat_id, None)
            self.notices[:] = [notice for notice in self.notices if notice.chat_id != chat_id]
            self.chat_resets[chat_id] = self.changed()

    # --- sync use ----------------------------------------------------------

    @property
    def sync(self) -> SyncDriver:
        """Blocking versions of the user simulation for sync tests (`fake.sync.send_text(...)`)."""
        return SyncDriver(self)

    def close(self) -> None:
        """Stop webhook delivery and the private loop `fake.sync` may have started."""
        runner = self._background
        if runner is not None:
            runner.stop(self)
            self._background = None


class _BackgroundLoop:
    """A private event loop in a daemon thread, for sync code when no server loop is bound."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox-loop", daemon=True)
        self.thread.start()

    def stop(self, fake: FakeTelegram) -> None:
        asyncio.run_coroutine_threadsafe(fake.aclose(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class SyncDriver:
    """Runs the fake's coroutines on its bound loop (the server's) from a plain thread."""

    def __init__(self, fake: FakeTelegram, timeout: float = 30.0) -> None:
        self.fake = fake
        self.timeout = timeout

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.fake._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            runner = self.fake._background
            if runner is None:
                runner = self.fake._background = _BackgroundLoop()
            loop = runner.loop
            self.fake.bind_loop(loop)
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            coro.close()
            raise RuntimeError("fake.sync used inside the fake's own event loop; await the async method instead")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(self.timeout)

    def send_text(self, user: UserRef, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.fake.send_text(user, text, **kwargs))

    def send_command(self, user: UserRef, command: str, args: str = "") -> dict[str, Any]:
        return self.run(self.fake.send_command(user, command, args))

    def send_photo(self, user: UserRef, content: bytes, caption: str | None = None) -> dict[str, Any]:
        return self.run(self.fake.send_photo(user, content, caption))

    def send_album(self, user: UserRef, photos: list[bytes], caption: str | None = None) -> list[dict[str, Any]]:
        return self.run(self.fake.send_album(user, photos, caption))

    def send_sticker(self, user: UserRef) -> dict[str, Any]:
        return self.run(self.fake.send_sticker(user))

    def send_voice(self, user: UserRef) -> dict[str, Any]:
        return self.run(self.fake.send_voice(user))

    def press_button(self, user: UserRef, message_id: int, callback_data: str) -> dict[str, Any]:
        return self.run(self.fake.press_button(user, message_id, callback_data))

    def send_pre_checkout(self, user: UserRef, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.fake.send_pre_checkout(user, **kwargs))

    def send_successful_payment(self, user: UserRef, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.fake.send_successful_payment(user, **kwargs))

    def call_api(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call a Bot API method in-process (no token check); returns the ApiResponse."""
        return self.run(self.fake.call_api(method, params))

    def wait_for(self, condition: Callable[[], T | None], *, timeout: float = 5.0) -> T:
        """Poll `condition()` from this thread until truthy; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            with self.fake.lock:
                value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.02)
