"""Celery shims for the bot: updates (queue updates) and delivery (queue delivery)."""

from __future__ import annotations

from collections import Counter

from celery import shared_task

from nanobanana.bot import delivery
from nanobanana.bot.inbox import inbox_redrive
from nanobanana.bot.runtime import bot_run
from nanobanana.bot.updates import update_handle, updates_handle
from nanobanana.core.tasks import AppTask


@shared_task(name="bot.handle_update", base=AppTask, time_limit=90, soft_time_limit=75)
def handle_update(update_id: int) -> str:
    return update_handle(update_id=update_id)


@shared_task(name="bot.handle_updates", base=AppTask, time_limit=120, soft_time_limit=100)
def handle_updates(update_ids: list[int]) -> dict[str, int]:
    return dict(Counter(updates_handle(update_ids=update_ids)))


@shared_task(name="bot.inbox_redrive", base=AppTask, time_limit=60, soft_time_limit=50)
def redrive() -> int:
    return inbox_redrive()


@shared_task(name="delivery.deliver", base=AppTask, time_limit=300, soft_time_limit=280)
def deliver(request_id: int) -> str:
    return bot_run(lambda bot, _dispatcher: delivery.deliver(bot, request_id))


@shared_task(name="delivery.deliver_many", base=AppTask, time_limit=300, soft_time_limit=280)
def deliver_many(request_ids: list[int]) -> dict[str, int]:
    return bot_run(lambda bot, _dispatcher: delivery.deliver_many(bot, request_ids))


@shared_task(name="delivery.status", base=AppTask, time_limit=60, soft_time_limit=50)
def status(request_id: int) -> None:
    bot_run(lambda bot, _dispatcher: delivery.status_processing(bot, request_id))
