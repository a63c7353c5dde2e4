"""The user middleware hands handlers a user, or does not call them at all."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.types import Chat, Message, User

from nanobanana.bot.middlewares import UserMiddleware


async def test_update_without_a_human_sender_reaches_no_handler():
    """A channel post or another bot's message has nobody to serve; `/start` in a channel used to crash."""
    called = []

    async def handler(event, data):
        called.append(data)

    post = Message(message_id=1, date=datetime.now(UTC), chat=Chat(id=-100, type="channel"), text="/start")
    for data in ({}, {"event_from_user": User(id=5, is_bot=True, first_name="Other bot")}):
        assert await UserMiddleware()(handler, post, dict(data)) is None
    assert called == []
