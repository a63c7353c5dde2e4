"""Fixtures for the emulator's own tests: a fake, an in-process HTTP client, a served fake, a real aiogram Bot."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image

from nanobanana.sandbox import FakeTelegram, RateLimits, create_app, serve_sandbox

USER_ID = 10001


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """A fake with limits off and one known user (USER_ID)."""
    telegram = FakeTelegram(limits=RateLimits.off(), webhook_retry_delays=(0.05,))
    telegram.user(USER_ID, first_name="Alice", language_code="en")
    yield telegram
    telegram.close()


@pytest.fixture
async def client(fake: FakeTelegram) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to `create_app(fake)` in-process (no socket)."""
    transport = httpx.ASGITransport(app=create_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http
    await fake.aclose()


@pytest.fixture
def api(fake: FakeTelegram) -> str:
    """Path prefix of the Bot API for the fake's token."""
    return f"/bot{fake.bot.token}"


@pytest.fixture
async def base_url(fake: FakeTelegram) -> AsyncIterator[str]:
    """The fake served on a loopback port on the test's loop."""
    async with serve_sandbox(fake) as url:
        yield url


@pytest.fixture
async def bot(fake: FakeTelegram, base_url: str) -> AsyncIterator[Bot]:
    """A real aiogram Bot whose Bot API is the sandbox."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(base_url))
    telegram_bot = Bot(fake.bot.token, session=session)
    yield telegram_bot
    await session.close()


def image_bytes(width: int = 640, height: int = 480, fmt: str = "PNG", color: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def png() -> bytes:
    return image_bytes()


@pytest.fixture
def make_image():
    """Builds image bytes: make_image(width, height, fmt)."""
    return image_bytes
