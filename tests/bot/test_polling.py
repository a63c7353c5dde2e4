"""`manage.py bot_polling`: long polling into the same inbox the webhook fills."""

from __future__ import annotations

import io
import secrets

import pytest
from django.core.management import CommandError, call_command

from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.bot.runtime import runtime_reset
from nanobanana.sandbox import FakeTelegram, RateLimits, run_sandbox

pytestmark = pytest.mark.django_db(transaction=True)
USER = 4242


@pytest.fixture
def fake(settings):
    settings.TELEGRAM_BOT_TOKEN = f"{secrets.randbelow(10**9) + 10**9}:TEST-token-for-the-fake-bot-api"
    fake = FakeTelegram(token=settings.TELEGRAM_BOT_TOKEN, limits=RateLimits.off())
    with run_sandbox(fake, ui=False) as base_url:
        settings.TELEGRAM_API_URL = base_url
        runtime_reset()
        yield fake
        runtime_reset()


def poll_once() -> str:
    out = io.StringIO()
    call_command("bot_polling", "--once", "--timeout", "0", stdout=out)
    return out.getvalue()


def test_polled_updates_land_in_the_inbox_and_are_queued_for_the_worker(fake, task_queue):
    sent = [fake.sync.send_text(USER, text)["update_id"] for text in ("/start", "hello")]
    assert "stored 2 updates" in poll_once()
    assert sorted(InboxUpdate.objects.values_list("update_id", flat=True)) == sent
    assert InboxUpdate.objects.filter(status=InboxStatus.PENDING).count() == 2
    assert task_queue.updates() == sent


def test_a_batch_seen_twice_is_stored_once(fake, task_queue):
    fake.sync.send_text(USER, "/start")
    poll_once()
    poll_once()  # the offset was never confirmed to Telegram, so the update comes again
    assert InboxUpdate.objects.count() == 1
    assert len(task_queue.pending) == 1


def test_polling_refuses_while_a_webhook_is_set(fake, settings):
    fake.sync.call_api("setWebhook", {"url": "https://bot.example.com/api/telegram/webhook"})
    with pytest.raises(CommandError, match="a webhook is set"):
        poll_once()
