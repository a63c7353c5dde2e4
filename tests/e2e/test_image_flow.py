"""The whole bot through the webhook and the emulated Bot API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, HoldStatus, LedgerEntry
from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot.presenters import local_time
from nanobanana.core import clock
from nanobanana.generation.models import DeliveryStatus, GenerationRequest, RequestStatus

pytestmark = pytest.mark.django_db(transaction=True)


def user_of(chat) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=chat.user_id)


def test_start_grants_the_welcome_bonus_once(chat):
    chat.send("/start")
    assert "Приветственный бонус" in chat.last_text()
    chat.send("/start")
    assert "С возвращением" in chat.last_text()
    user = user_of(chat)
    assert wallet_balance(user=user).balance == settings.WELCOME_BONUS_TOKENS
    assert LedgerEntry.objects.filter(wallet__user=user, kind=EntryKind.BONUS).count() == 1


def test_image_is_delivered_as_document_and_balance_drops_by_the_price_shown(chat):
    chat.create_image("рыжий кот в космосе")
    confirm_text = chat.last_text()
    assert "Стоимость: 2 токена" in confirm_text
    chat.tap("Создать за 2")

    request = GenerationRequest.objects.get()
    assert (request.status, request.delivery_status) == (RequestStatus.SUCCEEDED, DeliveryStatus.DELIVERED)
    kinds = [message.kind for message in chat.bot_messages()]
    assert kinds[-2:] == ["photo", "document"]
    document = chat.bot_messages()[-1].data["document"]
    assert document["file_name"].endswith(".jpg")
    assert chat.fake.file_bytes(document["file_id"]).startswith(b"\xff\xd8\xff")  # JPEG
    status_message = next(m for m in chat.bot_messages() if m.message_id == request.status_message_id)
    assert "Готово" in (status_message.text or "")

    user = user_of(chat)
    entries = list(LedgerEntry.objects.filter(wallet__user=user).order_by("id").values_list("kind", "amount"))
    assert entries == [(EntryKind.BONUS, settings.WELCOME_BONUS_TOKENS), (EntryKind.CAPTURE, -2)]
    assert request.hold.status == HoldStatus.CAPTURED
    assert wallet_balance(user=user).available == settings.WELCOME_BONUS_TOKENS - 2


def test_status_message_moves_from_queued_to_generating_to_done(chat, settings):
    settings.LOCAL_PROVIDER_LATENCY_SECONDS = 0.2  # long enough to be seen generating
    chat.create_image("a lighthouse")
    chat.tap("Создать за 2", run=False)
    chat.tasks.run_all(only="bot.")  # the update is handled; generation has not started
    request = GenerationRequest.objects.get()
    status = next(m for m in chat.bot_messages() if m.message_id == request.status_message_id)
    assert "В очереди" in status.text
    chat.tasks.run_all(include_delayed=False)  # started; the poll waits for the latency
    status = next(m for m in chat.bot_messages() if m.message_id == request.status_message_id)
    assert "В очереди" in status.text  # the "processing" edit waits a second: a quick result needs none
    chat.tasks.run_all(only="delivery.status")  # a second later, still generating
    status = next(m for m in chat.bot_messages() if m.message_id == request.status_message_id)
    assert "Рисую" in status.text
    chat.tasks.run_all()
    status = next(m for m in chat.bot_messages() if m.message_id == request.status_message_id)
    seen = [version.get("text", "") for version in status.history] + [status.text]
    order = [next(i for i, text in enumerate(seen) if marker in text) for marker in ("В очереди", "Рисую", "Готово")]
    assert order == sorted(order)


def test_a_request_behind_others_shows_its_place_in_line(chat, make_user):
    from nanobanana.generation.services import request_submit

    chat.create_image("a lighthouse")
    for number in range(2):  # two people confirmed first; no worker has started them yet
        request_submit(
            user=make_user(tokens=10),
            model_slug="local-fast",
            raw_params={},
            prompt="first",
            chat_id=900 + number,
            idempotency_key=f"ahead-{number}",
        )
    chat.tap("Создать за 2", run=False)
    chat.tasks.run_all(only="bot.")
    mine = GenerationRequest.objects.get(chat_id=chat.user_id)
    status = next(m for m in chat.bot_messages() if m.message_id == mine.status_message_id)
    assert "В очереди · перед вами: 2" in status.text


def test_provider_failure_tells_the_user_and_releases_the_hold_once(chat):
    chat.create_image("forbidden [fail:policy]")
    chat.tap("Создать за 2")
    request = GenerationRequest.objects.get()
    assert (request.status, request.hold.status) == (RequestStatus.FAILED, HoldStatus.RELEASED)
    assert "правилам безопасности" in chat.last_text()
    assert "policy_refusal" not in chat.last_text()
    assert "Error" not in chat.last_text()
    assert wallet_balance(user=user_of(chat)).available == settings.WELCOME_BONUS_TOKENS
    assert not LedgerEntry.objects.filter(kind=EntryKind.CAPTURE).exists()


def test_the_same_update_five_times_makes_one_request(chat):
    chat.create_image("dup")
    message, data = chat.button("Создать за 2")
    update = chat.fake.sync.press_button(chat.user_id, message.message_id, data)
    for _ in range(5):
        assert chat.post(update) == 200
    assert GenerationRequest.objects.count() == 1
    assert wallet_balance(user=user_of(chat)).available == settings.WELCOME_BONUS_TOKENS - 2


def test_two_taps_on_confirm_make_one_request(chat):
    chat.create_image("double tap")
    message, data = chat.button("Создать за 2")
    first = chat.fake.sync.press_button(chat.user_id, message.message_id, data)
    second = chat.fake.sync.press_button(chat.user_id, message.message_id, data)
    assert chat.post(first, run=False) == 200
    assert chat.post(second, run=False) == 200
    chat.tasks.run_all(include_delayed=False)
    assert GenerationRequest.objects.count() == 1
    answers = [chat.fake.callback_answer(update["callback_query"]["id"]) for update in (first, second)]
    assert ["Этот запрос уже принят 👌" in ((answer or {}).get("text") or "") for answer in answers] == [False, True]


def test_a_429_during_delivery_still_delivers_after_retry_after(chat):
    chat.fake.inject("retry_after", method="sendDocument", retry_after=1)
    chat.create_image("patience")
    chat.tap("Создать за 2")
    request = GenerationRequest.objects.get()
    assert request.delivery_status == DeliveryStatus.DELIVERED
    assert [message.kind for message in chat.bot_messages()].count("document") == 1
    assert request.results.filter(sent_at__isnull=True).count() == 0


def test_a_user_who_blocked_the_bot_is_marked_and_nothing_is_regenerated(chat):
    chat.create_image("no one home")
    chat.tap("Создать за 2", run=False)
    chat.tasks.run_all(only="bot.")
    chat.fake.block(chat.user_id)
    chat.tasks.run_all(include_delayed=False)
    request = GenerationRequest.objects.get()
    assert request.status == RequestStatus.SUCCEEDED
    assert request.delivery_status == DeliveryStatus.BLOCKED
    assert user_of(chat).blocked_bot_at is not None
    assert request.results.count() == 1


def test_a_file_too_large_for_telegram_is_sent_as_a_link(chat, settings):
    settings.TELEGRAM_UPLOAD_LIMIT_BYTES = 100
    chat.create_image("huge")
    chat.tap("Создать за 2")
    request = GenerationRequest.objects.get()
    assert request.delivery_status == DeliveryStatus.LINKED
    link_message = next(m for m in chat.bot_messages() if "слишком большой" in (m.text or ""))
    assert f"{settings.PUBLIC_BASE_URL}/media/" in link_message.text
    assert "document" not in [message.kind for message in chat.bot_messages()]


def test_cancel_of_a_queued_request_returns_the_tokens(chat):
    chat.create_image("never mind")
    chat.tap("Создать за 2", run=False)
    chat.tasks.run_all(only="bot.")  # handled; the generation task is still queued
    chat.tap("Отменить", run=False)
    chat.tasks.run_all(only="bot.")
    chat.tasks.run_all()  # the start task then finds the request cancelled
    request = GenerationRequest.objects.get()
    assert (request.status, request.hold.status) == (RequestStatus.CANCELLED, HoldStatus.RELEASED)
    assert "отменён" in chat.last_text()
    assert wallet_balance(user=user_of(chat)).available == settings.WELCOME_BONUS_TOKENS


def test_not_enough_tokens_offers_a_top_up_and_holds_nothing(chat, settings):
    settings.WELCOME_BONUS_TOKENS = 1  # one image costs 2
    chat.create_image("a cat")
    chat.tap("Создать за 2")
    assert "Не хватает токенов" in chat.last_text()
    assert GenerationRequest.objects.count() == 0
    assert wallet_balance(user=user_of(chat)).held == 0
    chat.tap("Пополнить")
    assert "Выберите пакет токенов" in chat.last_text()
    assert chat.button("⭐ 100 ток. за 50")


def test_prompt_too_long_gets_a_clear_answer(chat, settings):
    settings.PROMPT_MAX_LENGTH = 20
    chat.create_image("x" * 21)
    assert "Слишком длинное описание: 21 символов, максимум 20" in chat.last_text()
    assert GenerationRequest.objects.count() == 0


def test_stickers_and_voice_get_a_polite_refusal(chat):
    for send in (chat.fake.sync.send_sticker, chat.fake.sync.send_voice):
        assert chat.post(send(chat.user_id)) == 200
        assert "не поддерживаю" in chat.last_text()


def test_history_lists_generations_and_repeat_prices_again(chat):
    chat.create_image("first one")
    chat.tap("Создать за 2")
    chat.send("/history")
    assert "first one" in chat.last_text()
    assert local_time(GenerationRequest.objects.get().created_at) in chat.last_text()  # in MSK, named
    chat.tap("🔁 #")
    assert "Стоимость" in chat.last_text()
    chat.tap("Создать за 2")
    assert GenerationRequest.objects.count() == 2


def test_english_users_get_english_and_can_switch_to_russian(fake_telegram, client, task_queue, catalog, settings):
    from tests.e2e.conftest import Chat

    fake_telegram.user(777, first_name="Ann", language_code="en")
    english = Chat(fake_telegram, client, task_queue, 777, settings.TG_WEBHOOK_SECRET, language="en")
    english.send("/start")
    assert "Welcome bonus" in english.last_text()
    english.tap("Settings")
    english.tap("Русский")
    assert "Язык переключён" in english.last_text()
    assert TelegramUser.objects.get(telegram_id=777).language == "ru"


def test_a_document_telegram_refuses_for_another_reason_still_arrives_as_a_link(chat):
    chat.create_image("odd file")
    chat.fake.inject("bad_request", method="sendDocument", description="wrong file identifier/HTTP URL specified")
    chat.tap("Создать за 2")
    request = GenerationRequest.objects.get()
    assert request.delivery_status == DeliveryStatus.LINKED
    assert any("/media/" in (m.text or "") for m in chat.bot_messages())
    assert request.hold.status == HoldStatus.CAPTURED


def test_a_chat_telegram_refuses_outright_ends_the_delivery_as_failed_and_the_sweep_leaves_it(chat):
    from nanobanana.generation.recovery import requests_sweep

    chat.create_image("gone")
    chat.tap("Создать за 2", run=False)
    chat.tasks.run_all(only="bot.")
    chat.fake.inject("bad_request", description="chat not found", times=None)
    chat.tasks.run_all()
    request = GenerationRequest.objects.get()
    assert request.delivery_status == DeliveryStatus.FAILED
    GenerationRequest.objects.update(finished_at=clock.now() - timedelta(hours=1))
    assert requests_sweep().redelivered == 0
    assert request.results.count() == 1  # generated once, never again


def test_once_a_prompt_arrives_the_question_loses_its_buttons(chat, settings):
    settings.PROMPT_MAX_LENGTH = 10
    chat.create_image("far too long for the limit")
    asked_first = next(m for m in chat.bot_messages() if "Опишите" in (m.text or ""))
    assert asked_first.buttons == []
    assert [b["text"] for b in chat.bot_messages()[-1].buttons][-1].endswith("Отмена")  # the retry question
    chat.send("short")
    assert all(not m.buttons for m in chat.bot_messages() if "Слишком длинное" in (m.text or ""))
    assert "Стоимость" in chat.last_text()
