"""Telegram Stars end to end: the top-up menu, invoice, pre-checkout answered
in the webhook reply, successful_payment credited once, receipt."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, LedgerEntry
from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.payments.models import IncidentKind, Payment, PaymentIncident, PaymentStatus, TokenPackage

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK = "/api/telegram/webhook"


def user_of(chat) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=chat.user_id)


def open_topup(chat) -> None:
    chat.send("/start")
    chat.tap("Баланс")
    chat.tap("Пополнить")


def buy_100(chat) -> int:
    """Menu -> top-up -> the 100-token Stars button; returns the invoice message id."""
    open_topup(chat)
    chat.tap("⭐ 100 ток. за 50")
    invoice = chat.bot_messages()[-1]
    assert invoice.kind == "invoice"
    return invoice.message_id


def post(chat, update):
    return chat.client.post(
        WEBHOOK,
        data=json.dumps(update),
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=chat.secret,
    )


def test_topup_menu_lists_the_active_packages_with_stars_prices(chat):
    TokenPackage.objects.filter(slug="tokens-1000").update(is_active=False)
    open_topup(chat)
    text = chat.last_text()
    assert "100 токенов — 50 ⭐" in text
    assert "300 токенов — 140 ⭐" in text
    assert "1000 токенов" not in text
    labels = [button["text"] for button in chat.bot_messages()[-1].buttons]
    assert "⭐ 300 ток. за 140" in labels
    assert not any("₽" in label for label in labels), "no card button without LAVA_API_KEY"


def test_topup_menu_in_english(chat):
    chat.fake.user(chat.user_id, language_code="en")
    chat.language = "en"
    chat.send("/start")
    chat.send("/topup")
    assert "Pick a token package" in chat.last_text()
    assert chat.button("⭐ 100 tok. for 50")


def test_invoice_is_in_stars_with_one_price_and_a_payload_naming_package_and_user(chat):
    message_id = buy_100(chat)
    invoice = chat.fake.invoices[(chat.user_id, message_id)]
    package = TokenPackage.objects.get(slug="tokens-100")
    assert invoice["currency"] == "XTR"
    assert invoice["total_amount"] == 50
    assert len(invoice["prices"]) == 1
    assert invoice["payload"] == f"pkg:{package.pk}:u:{chat.user_id}"


def test_pre_checkout_is_answered_in_the_webhook_reply_and_never_queued(chat):
    message_id = buy_100(chat)
    update = chat.fake.sync.send_pre_checkout(chat.user_id, invoice_message_id=message_id)
    response = post(chat, update)
    reply = response.json()
    assert reply == {
        "method": "answerPreCheckoutQuery",
        "pre_checkout_query_id": update["pre_checkout_query"]["id"],
        "ok": True,
    }
    row = InboxUpdate.objects.get(update_id=update["update_id"])
    assert row.status == InboxStatus.DONE
    assert chat.tasks.updates() == []


def test_full_stars_purchase_credits_the_package_and_sends_a_receipt(chat):
    message_id = buy_100(chat)
    update = chat.fake.sync.send_pre_checkout(chat.user_id, invoice_message_id=message_id)
    assert chat.post(update) == 200
    assert chat.fake.pre_checkout_answer(update["pre_checkout_query"]["id"])["ok"] is True
    query = update["pre_checkout_query"]
    paid = chat.fake.sync.send_successful_payment(
        chat.user_id, payload=query["invoice_payload"], total_amount=query["total_amount"], charge_id="stxCHARGE1"
    )
    assert chat.post(paid) == 200

    user = user_of(chat)
    payment = Payment.objects.get()
    assert (payment.status, payment.tokens, payment.external_id) == (PaymentStatus.PAID, 100, "stxCHARGE1")
    assert wallet_balance(user=user).balance == settings.WELCOME_BONUS_TOKENS + 100
    entry = LedgerEntry.objects.get(kind=EntryKind.PURCHASE)
    assert (entry.amount, entry.idempotency_key) == (100, "payment:stars:stxCHARGE1")
    receipt = chat.last_text()
    assert "Оплата получена" in receipt
    assert "Зачислено: <b>100</b>" in receipt or "Зачислено: 100" in receipt
    assert "stxCHARGE1" in receipt


def test_the_same_payment_replayed_five_times_credits_once(chat):
    message_id = buy_100(chat)
    package = TokenPackage.objects.get(slug="tokens-100")
    payload = chat.fake.invoices[(chat.user_id, message_id)]["payload"]
    first = chat.fake.sync.send_successful_payment(chat.user_id, payload=payload, total_amount=50, charge_id="stxDUP")
    for _ in range(5):  # the same update redelivered
        assert chat.post(first) == 200
    for _ in range(5):  # the same charge in new updates
        again = chat.fake.sync.send_successful_payment(
            chat.user_id, payload=payload, total_amount=50, charge_id="stxDUP"
        )
        assert chat.post(again) == 200
    assert Payment.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count() == 1
    assert wallet_balance(user=user_of(chat)).balance == settings.WELCOME_BONUS_TOKENS + package.tokens
    receipts = [m for m in chat.bot_messages() if "Оплата получена" in (m.text or "")]
    assert len(receipts) == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("price", "Цена изменилась"),
        ("inactive", "больше не продаётся"),
        ("other_user", "другому пользователю"),
        ("garbage", "больше не продаётся"),
    ],
)
def test_pre_checkout_refuses_with_a_reason(chat, change, expected):
    message_id = buy_100(chat)
    invoice = chat.fake.invoices[(chat.user_id, message_id)]
    kwargs = {"payload": invoice["payload"], "total_amount": invoice["total_amount"]}
    if change == "price":
        TokenPackage.objects.filter(slug="tokens-100").update(price_stars=60)
    elif change == "inactive":
        TokenPackage.objects.filter(slug="tokens-100").update(is_active=False)
    elif change == "other_user":
        kwargs["payload"] = invoice["payload"].replace(f"u:{chat.user_id}", "u:999")
    else:
        kwargs["payload"] = "not ours"
    update = chat.fake.sync.send_pre_checkout(chat.user_id, **kwargs)
    assert chat.post(update) == 200
    answer = chat.fake.pre_checkout_answer(update["pre_checkout_query"]["id"])
    assert answer["ok"] is False
    assert expected in answer["error_message"]


def test_pre_checkout_refusal_is_in_english_for_an_english_user(chat):
    chat.fake.user(chat.user_id, language_code="en")
    chat.send("/start")
    update = chat.fake.sync.send_pre_checkout(chat.user_id, payload=f"pkg:999999:u:{chat.user_id}", total_amount=50)
    assert chat.post(update) == 200
    answer = chat.fake.pre_checkout_answer(update["pre_checkout_query"]["id"])
    assert "no longer sold" in answer["error_message"]


def test_a_payment_naming_another_user_is_quarantined_and_credited_to_nobody(chat):
    chat.send("/start")
    package = TokenPackage.objects.get(slug="tokens-100")
    paid = chat.fake.sync.send_successful_payment(
        chat.user_id, payload=f"pkg:{package.pk}:u:42", total_amount=50, charge_id="stxSTRAY"
    )
    assert chat.post(paid) == 200
    assert not Payment.objects.exists()
    assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()
    incident = PaymentIncident.objects.get()
    assert (incident.external_id, incident.kind) == ("stxSTRAY", IncidentKind.UNKNOWN_PACKAGE)
    assert "stxSTRAY" in chat.last_text()


def test_a_payment_with_the_wrong_amount_is_quarantined(chat):
    chat.send("/start")
    package = TokenPackage.objects.get(slug="tokens-100")
    paid = chat.fake.sync.send_successful_payment(
        chat.user_id, payload=f"pkg:{package.pk}:u:{chat.user_id}", total_amount=1, charge_id="stxCHEAP"
    )
    assert chat.post(paid) == 200
    assert not Payment.objects.exists()
    assert PaymentIncident.objects.get().kind == IncidentKind.AMOUNT_MISMATCH


def test_pre_checkout_query_is_among_the_handled_update_types():
    from nanobanana.bot.dispatcher import used_update_types

    assert {"pre_checkout_query", "message", "callback_query"} <= set(used_update_types())


@pytest.mark.parametrize(("price", "ok"), [(50, True), (49, False)])
def test_without_a_webhook_the_dispatcher_answers_the_pre_checkout_query(chat, price, ok):
    """Long polling: the update reaches the handler, which answers through the Bot API."""
    from nanobanana.bot.inbox import inbox_store

    message_id = buy_100(chat)
    payload = chat.fake.invoices[(chat.user_id, message_id)]["payload"]
    update = chat.fake.sync.send_pre_checkout(chat.user_id, payload=payload, total_amount=price)
    inbox_store(update_id=update["update_id"], payload=update)
    chat.tasks.run_all()
    answer = chat.fake.pre_checkout_answer(update["pre_checkout_query"]["id"])
    assert answer["ok"] is ok
    if not ok:
        assert "Цена изменилась" in answer["error_message"]


def test_a_malformed_pre_checkout_query_falls_back_to_the_queue(chat):
    update = {"update_id": 1, "pre_checkout_query": {"id": "q1", "from": {"id": "not-an-int"}}}
    response = post(chat, update)
    assert response.json() == {"ok": True, "duplicate": False}
    assert chat.tasks.updates() == [update["update_id"]]


def test_paying_like_the_sandbox_chat_page_does_completes_the_whole_loop(chat):
    """The chat page's Pay button: pre_checkout_query, the webhook's answer
    performed by the emulator, then Telegram's successful_payment."""
    message_id = buy_100(chat)
    chat.fake.pending.clear()
    chat.fake.sync.run(chat.fake.pay_invoice(chat.user_id, message_id))
    for _ in range(2):  # the pre-checkout query, then the payment it unlocked
        update = chat.fake.pending.pop(0)
        assert chat.post(update) == 200
    assert not chat.fake.pending
    assert Payment.objects.get().status == PaymentStatus.PAID
    assert "Оплата получена" in chat.last_text()
