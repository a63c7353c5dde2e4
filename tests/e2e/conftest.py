"""End-to-end harness: a person in the sandbox emulator talks to the bot.

Updates travel the production path: the emulator builds them, they are
POSTed to our webhook (Django test client), stored in the inbox, and the
queued tasks run in order as a worker would. The bot answers over HTTP to the
emulator through TELEGRAM_API_URL, exactly as it talks to Telegram."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from nanobanana.bot.runtime import runtime_reset
from nanobanana.sandbox import FakeTelegram, RateLimits, StoredMessage, run_sandbox

WEBHOOK = "/api/telegram/webhook"


@pytest.fixture
def fake_telegram(settings: Any) -> Iterator[FakeTelegram]:
    """The emulator on a loopback port, with the bot pointed at it.

    Each test gets a bot of its own id: the rate limiter keeps its state
    (a 429's pause, slots) in Redis per bot, and a pause left by one test, or
    by another test run on this machine, must not slow down the next."""
    settings.TELEGRAM_BOT_TOKEN = f"{secrets.randbelow(10**9) + 10**9}:TEST-token-for-the-fake-bot-api"
    fake = FakeTelegram(token=settings.TELEGRAM_BOT_TOKEN, limits=RateLimits.off())
    # The limiter is exercised on its own; here spacing would only slow tests down.
    settings.TELEGRAM_CHAT_INTERVAL_SECONDS = 0.0
    settings.TELEGRAM_RATE_PER_SECOND = 10_000.0
    with run_sandbox(fake, ui=False) as base_url:
        settings.TELEGRAM_API_URL = base_url
        runtime_reset()
        yield fake
        runtime_reset()


@dataclass
class Chat:
    """One simulated user's private chat with the bot."""

    fake: FakeTelegram
    client: Client
    tasks: Any
    user_id: int
    secret: str

    def post(self, update: dict[str, Any], *, run: bool = True) -> int:
        response = self.client.post(
            WEBHOOK,
            data=json.dumps(update),
            content_type="application/json",
            HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=self.secret,
        )
        if response.status_code == 200 and '"method"' in response.content.decode():
            # A method in the webhook's reply is performed by Telegram.
            reply = response.json()
            self.fake.sync.call_api(reply.pop("method"), reply)
        if run:
            self.tasks.run_all(include_delayed=False)
        return response.status_code

    def send(self, text: str, *, run: bool = True) -> dict[str, Any]:
        update = self.fake.sync.send_text(self.user_id, text)
        assert self.post(update, run=run) == 200
        return update

    def button(self, label: str) -> tuple[StoredMessage, str]:
        """The newest bot message with a button whose text contains `label`."""
        for message in reversed(self.bot_messages()):
            for button in message.buttons:
                if label in button.get("text", "") and "callback_data" in button:
                    return message, button["callback_data"]
        shown = [[button.get("text") for button in message.buttons] for message in self.bot_messages()]
        raise AssertionError(f"no button {label!r}; buttons shown: {shown}")

    def tap(self, label: str, *, run: bool = True) -> dict[str, Any]:
        message, data = self.button(label)
        update = self.fake.sync.press_button(self.user_id, message.message_id, data)
        assert self.post(update, run=run) == 200
        return update

    def bot_messages(self) -> list[StoredMessage]:
        return [message for message in self.fake.history(self.user_id) if message.outgoing and not message.deleted]

    def last_text(self) -> str:
        message = self.bot_messages()[-1]
        return message.text or message.caption or ""

    def create_image(self, prompt: str, *, model: str = "Local · Fast") -> None:
        """Menu -> model -> defaults -> prompt: stops at the price confirmation."""
        self.send("/start")
        self.tap("Создать изображение" if self.language == "ru" else "Create image")
        self.tap(model)
        self.tap("Далее" if self.language == "ru" else "Next")
        self.send(prompt)

    language: str = "ru"


@pytest.fixture
def chat(
    fake_telegram: FakeTelegram, client: Client, task_queue: Any, catalog: None, packages: None, settings: Any
) -> Chat:
    fake_telegram.user(501, first_name="Аня", language_code="ru")
    return Chat(fake_telegram, client, task_queue, 501, settings.TG_WEBHOOK_SECRET)
