"""The webhook stores first and answers after; it never loses or doubles an update."""

from __future__ import annotations

import json

import pytest

from nanobanana.bot.models import InboxStatus, InboxUpdate
from tests.bot.conftest import SQLSTATE_ADMIN_SHUTDOWN

URL = "/api/telegram/webhook"
SECRET = "test-webhook-secret"
pytestmark = pytest.mark.django_db(transaction=True)


def post(client, body, *, secret=SECRET, **extra):
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret} if secret is not None else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers, **extra)


def update(update_id: int = 1) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "chat": {"id": 5, "type": "private"},
            "from": {"id": 5, "is_bot": False, "first_name": "A"},
            "text": "hi",
        },
    }


def test_valid_update_is_stored_and_queued_before_200(client, task_queue):
    response = post(client, update(10))
    assert response.status_code == 200
    assert InboxUpdate.objects.get(update_id=10).status == InboxStatus.PENDING
    assert task_queue.names() == ["bot.handle_updates"]


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
def test_missing_or_wrong_secret_gets_403_and_stores_nothing(client, task_queue, secret):
    response = post(client, update(), secret=secret)
    assert response.status_code == 403
    assert not InboxUpdate.objects.exists()
    assert task_queue.names() == []


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'"text"', b'{"no_update_id": 1}', b'{"update_id": "7"}', b"\xff"]
)
def test_malformed_body_gets_400_and_stores_nothing(client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert not InboxUpdate.objects.exists()


def test_oversized_body_gets_413(client, settings):
    settings.TELEGRAM_WEBHOOK_MAX_BODY_BYTES = 1000
    big = update()
    big["message"]["text"] = "x" * 2000
    response = post(client, big)
    assert response.status_code == 413
    assert not InboxUpdate.objects.exists()


def test_duplicate_update_answers_200_and_is_queued_once(client, task_queue):
    for _ in range(5):
        assert post(client, update(77)).status_code == 200
    assert InboxUpdate.objects.filter(update_id=77).count() == 1
    assert task_queue.names() == ["bot.handle_updates"]


def test_database_down_answers_503_so_telegram_retries(client, task_queue, inbox_insert_fails):
    inbox_insert_fails(5, SQLSTATE_ADMIN_SHUTDOWN)
    response = post(client, update(5))
    assert response.status_code == 503
    assert not InboxUpdate.objects.exists()
    assert task_queue.names() == []


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


def test_nul_characters_are_stored_as_replacement_characters_not_refused(client, task_queue):
    """PostgreSQL's jsonb refuses U+0000; the update must still be stored (found by the fault suite)."""
    body = update(31)
    body["message"]["text"] = "a\u0000b"
    body["message"]["from"]["first_name"] = "\u0000"
    response = post(client, body)
    assert response.status_code == 200
    payload = InboxUpdate.objects.get(update_id=31).payload
    assert payload["message"]["text"] == "a\ufffdb"
    assert payload["message"]["from"]["first_name"] == "\ufffd"
    assert task_queue.names() == ["bot.handle_updates"]
