from __future__ import annotations

import asyncio
from typing import Any

from aiogram.exceptions import TelegramConflictError
from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from nanobanana.bot.dispatcher import used_update_types
from nanobanana.bot.inbox import inbox_store
from nanobanana.bot.sender import create_bot


class Command(BaseCommand):
    help = (
        "Long polling for local use with a real token: updates go into the same inbox the webhook "
        "fills, and the worker handles them. Refuses while a webhook is set (Telegram allows one or the other)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=int, default=25, help="getUpdates long-poll timeout, seconds")
        parser.add_argument("--once", action="store_true", help="store one batch of updates, then exit")

    def handle(self, *args: Any, timeout: int, once: bool, **options: Any) -> None:
        try:
            asyncio.run(self._poll(timeout, once=once))
        except KeyboardInterrupt:
            self.stdout.write("stopped")

    async def _poll(self, timeout: int, *, once: bool = False) -> None:
        bot = create_bot()
        allowed = used_update_types()
        offset: int | None = None
        try:
            info = await bot.get_webhook_info()
            if info.url:
                raise CommandError(
                    "a webhook is set for this bot; remove it first (deployctl webhook, or deleteWebhook)"
                )
            self.stdout.write("polling for updates (Ctrl-C stops)")
            while True:
                try:
                    updates = await bot.get_updates(offset=offset, timeout=timeout, allowed_updates=allowed)
                except TelegramConflictError as error:
                    raise CommandError(f"another consumer is polling this bot: {error.message}") from error
                for update in updates:
                    payload = update.model_dump(mode="json", exclude_none=True, by_alias=True)
                    await sync_to_async(inbox_store)(update_id=update.update_id, payload=payload)
                    offset = update.update_id + 1
                if once:
                    self.stdout.write(f"stored {len(updates)} updates")
                    return
        finally:
            await bot.session.close()
            # The inbox writes ran on asgiref's executor thread: close its connection.
            await sync_to_async(connections.close_all)()
