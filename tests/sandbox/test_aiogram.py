"""A real aiogram Bot against the sandbox: it cannot tell the emulator from Telegram."""

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetMe
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto

from nanobanana.sandbox import FakeTelegram, RateLimits

USER = 10001


async def test_send_message_with_html_and_keyboard(bot, fake):
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go")]])
    message = await bot.send_message(USER, "<b>Hello</b>, world", parse_mode="HTML", reply_markup=markup)
    assert message.text == "Hello, world"
    assert message.html_text == "<b>Hello</b>, world"
    assert message.chat.id == USER
    assert fake.last_message(USER).callback_data == ["go"]


async def test_send_document_and_download_it_back(bot):
    content = b"%PDF-1.4 sandbox" * 100
    message = await bot.send_document(USER, BufferedInputFile(content, filename="result.pdf"), caption="done")
    assert message.document.file_name == "result.pdf"
    assert message.caption == "done"
    file = await bot.get_file(message.document.file_id)
    downloaded = await bot.download_file(file.file_path)
    assert downloaded.read() == content


async def test_edit_message_text_and_not_modified(bot):
    message = await bot.send_message(USER, "Generating…")
    edited = await bot.edit_message_text("Ready", chat_id=USER, message_id=message.message_id)
    assert edited.text == "Ready"
    assert edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Ready", chat_id=USER, message_id=message.message_id)


async def test_send_photo_and_media_group(bot, png):
    photo = await bot.send_photo(USER, BufferedInputFile(png, filename="a.png"))
    assert photo.photo[-1].width == 640
    album = await bot.send_media_group(
        USER,
        [InputMediaPhoto(media=BufferedInputFile(png, "1.png")), InputMediaPhoto(media=photo.photo[-1].file_id)],
    )
    assert len(album) == 2
    assert album[0].media_group_id == album[1].media_group_id


async def test_polling_receives_user_updates(bot, fake):
    await fake.send_command(USER, "start")
    updates = await bot.get_updates(timeout=1)
    assert updates[0].message.text == "/start"
    assert updates[0].message.entities[0].type == "bot_command"


async def test_injected_retry_after_raises_telegram_retry_after(bot, fake):
    fake.inject("retry_after", method="sendDocument", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_document(USER, BufferedInputFile(b"x", filename="x.txt"))
    assert caught.value.retry_after == 3


async def test_blocked_user_raises_telegram_forbidden(bot, fake):
    fake.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")


@pytest.mark.parametrize(
    ("kind", "error"),
    [("server_error", TelegramServerError), ("entity_too_large", TelegramEntityTooLarge)],
)
async def test_other_faults_map_to_aiogram_errors(bot, fake, kind, error):
    fake.inject(kind, method="sendMessage")
    with pytest.raises(error):
        await bot.send_message(USER, "hi")


async def test_timeout_fault_makes_aiogram_give_up(bot, fake):
    fake.inject("timeout", method="getMe", seconds=2)
    with pytest.raises(TelegramNetworkError):
        await bot(GetMe(), request_timeout=1)


async def test_wrong_token_is_unauthorized(fake, base_url):
    session = AiohttpSession(api=TelegramAPIServer.from_base(base_url))
    stranger = Bot("42:not-the-token", session=session)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await session.close()


async def test_rate_limit_reaches_aiogram_as_retry_after(base_url):
    # A second fake with real limits, served on its own port.
    from nanobanana.sandbox import serve_sandbox

    limited = FakeTelegram(limits=RateLimits())
    limited.user(USER)
    async with serve_sandbox(limited, ui=False) as url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(url))
        telegram_bot = Bot(limited.bot.token, session=session)
        try:
            await telegram_bot.send_message(USER, "one")
            with pytest.raises(TelegramRetryAfter) as caught:
                await telegram_bot.send_message(USER, "two")
            assert caught.value.retry_after >= 1
        finally:
            await session.close()
