"""lava.top card payments against a local fake of its API and webhook."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.conf import settings

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, LedgerEntry
from nanobanana.billing.reconciliation import reconcile
from nanobanana.billing.selectors import wallet_balance
from nanobanana.core.errors import PaymentError, TransientError, ValidationError
from nanobanana.payments.lava import LavaClient, lava_invoice_create, lava_webhook_handle
from nanobanana.payments.models import IncidentKind, Payment, PaymentIncident, PaymentStatus, TokenPackage
from tests.payments.conftest import LAVA_KEY, LAVA_WEBHOOK_KEY, OFFER_100

WEBHOOK = "/api/payments/lava/webhook"


def package_100() -> TokenPackage:
    return TokenPackage.objects.get(slug="tokens-100")


def deliver(client, event, *, key: str | None = LAVA_WEBHOOK_KEY):
    headers = {"HTTP_X_API_KEY": key} if key is not None else {}
    return client.post(WEBHOOK, data=json.dumps(event), content_type="application/json", **headers)


@pytest.fixture
def invoice(lava, make_user) -> Payment:
    """A pending lava.top invoice for the 100-token package."""
    return lava_invoice_create(user=make_user(), package=package_100(), language="ru")


# --- the client and invoice creation -------------------------------------------------------


@pytest.mark.django_db
class TestInvoiceCreate:
    def test_sends_the_documented_request_and_records_a_pending_payment(self, lava, make_user):
        user = make_user(language_code="en")
        payment = lava_invoice_create(user=user, package=package_100(), language="en")
        request = lava.requests[-1]
        assert (request.method, request.url.path) == ("POST", "/api/v2/invoice")
        assert request.headers["X-Api-Key"] == LAVA_KEY
        assert json.loads(request.content) == {
            "email": f"tg{user.telegram_id}@{settings.LAVA_BUYER_EMAIL_DOMAIN}",
            "offerId": OFFER_100,
            "currency": "RUB",
            "buyerLanguage": "EN",
        }
        assert payment.status == PaymentStatus.PENDING
        assert (payment.amount, payment.currency, payment.tokens) == (Decimal("99.00"), "RUB", 100)
        assert payment.external_id in lava.invoices
        assert payment.payment_url.startswith("https://app.lava.top/")

    def test_an_offer_priced_differently_from_the_package_is_refused(self, lava, make_user):
        lava.offers[OFFER_100] = (Decimal("149.00"), "RUB")
        with pytest.raises(PaymentError, match="costs 149"):
            lava_invoice_create(user=make_user(), package=package_100(), language="ru")
        assert not Payment.objects.exists()

    def test_without_an_api_key_card_payment_is_off(self, lava, make_user, settings):
        settings.LAVA_API_KEY = ""
        with pytest.raises(PaymentError):
            lava_invoice_create(user=make_user(), package=package_100(), language="ru")
        assert not lava.requests

    def test_a_package_without_a_card_price_is_refused(self, lava, make_user):
        with pytest.raises(ValidationError):
            lava_invoice_create(user=make_user(), package=TokenPackage.objects.get(slug="tokens-300"), language="ru")

    @pytest.mark.parametrize(
        ("fault", "error"),
        [
            ("500", TransientError),
            ("429", TransientError),
            ("timeout", TransientError),
            ("malformed", PaymentError),
            ("no_url", PaymentError),
            ("400", PaymentError),
        ],
    )
    def test_faults_map_to_transient_or_permanent_errors(self, lava, make_user, fault, error):
        lava.faults.append(fault)
        with pytest.raises(error) as caught:
            lava_invoice_create(user=make_user(), package=package_100(), language="ru")
        assert LAVA_KEY not in str(caught.value)
        assert not Payment.objects.exists()

    def test_a_wrong_key_is_refused_by_lava_and_named_without_the_key(self, lava):
        client = LavaClient(api_key="wrong", base_url=settings.LAVA_API_URL, timeout=5)
        with pytest.raises(PaymentError, match="401") as caught:
            client.invoice_create(email="a@example.com", offer_id=OFFER_100, currency="RUB", buyer_language="RU")
        assert "wrong" not in str(caught.value)
        client.close()

    def test_unknown_offer_is_a_permanent_error(self, lava):
        client = LavaClient(api_key=LAVA_KEY, base_url=settings.LAVA_API_URL, timeout=5)
        with pytest.raises(PaymentError, match="404"):
            client.invoice_create(email="a@example.com", offer_id="nope", currency="RUB", buyer_language="RU")
        client.close()

    def test_network_failure_is_transient(self, settings):
        client = LavaClient(
            api_key=LAVA_KEY,
            base_url="https://gate.lava.top",
            timeout=5,
            transport=httpx_mock_raising_connect_error(),
        )
        with pytest.raises(TransientError):
            client.invoice_create(email="a@example.com", offer_id=OFFER_100, currency="RUB", buyer_language="RU")


def httpx_mock_raising_connect_error():
    import httpx

    def handler(request):
        raise httpx.ConnectError("refused", request=request)

    return httpx.MockTransport(handler)


# --- the webhook -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the receipt task is enqueued on commit
class TestWebhook:
    @pytest.mark.parametrize("key", [None, "", "wrong-key", LAVA_KEY])
    def test_bad_auth_gets_401_and_nothing_is_credited(self, client, lava, invoice, key):
        response = deliver(client, lava.event(invoice.external_id), key=key)
        assert response.status_code == 401
        invoice.refresh_from_db()
        assert invoice.status == PaymentStatus.PENDING
        assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()

    def test_no_webhook_key_configured_refuses_everything(self, client, lava, invoice, settings):
        settings.LAVA_WEBHOOK_API_KEY = ""
        assert deliver(client, lava.event(invoice.external_id), key="").status_code == 401

    def test_success_credits_the_package_once_and_queues_the_receipt(self, client, lava, invoice, task_queue):
        response = deliver(client, lava.event(invoice.external_id))
        assert (response.status_code, response.json()["result"]) == (200, "credited")
        invoice.refresh_from_db()
        assert invoice.status == PaymentStatus.PAID
        entry = LedgerEntry.objects.get(kind=EntryKind.PURCHASE)
        assert (entry.amount, entry.idempotency_key) == (100, f"payment:lava:{invoice.external_id}")
        assert task_queue.names() == ["payments.notify"]

    def test_a_replay_credits_once(self, client, lava, invoice, task_queue):
        results = [deliver(client, lava.event(invoice.external_id)).json()["result"] for _ in range(5)]
        assert results == ["credited", "replay", "replay", "replay", "replay"]
        assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count() == 1
        assert wallet_balance(user=invoice.user).balance == 100
        assert task_queue.names() == ["payments.notify"]

    @pytest.mark.parametrize(("amount", "currency"), [(1.0, "RUB"), (99.0, "USD"), ("abc", "RUB"), (None, "RUB")])
    def test_an_amount_or_currency_mismatch_is_rejected_and_flagged(self, client, lava, invoice, amount, currency):
        event = lava.event(invoice.external_id, amount=amount, currency=currency)
        if amount is None:
            event.pop("amount")
        response = deliver(client, event)
        assert response.json()["result"] == "quarantined"
        invoice.refresh_from_db()
        assert invoice.status == PaymentStatus.PENDING
        assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()
        incident = PaymentIncident.objects.get()
        assert (incident.kind, incident.payment) == (IncidentKind.AMOUNT_MISMATCH, invoice)

    def test_an_unknown_invoice_is_quarantined_and_credited_to_nobody(self, client, lava, invoice):
        response = deliver(client, lava.event("00000000-dead-beef-0000-000000000000"))
        assert response.json()["result"] == "quarantined"
        deliver(client, lava.event("00000000-dead-beef-0000-000000000000"))  # a replay: still one incident
        incident = PaymentIncident.objects.get()
        assert (incident.kind, incident.payment) == (IncidentKind.UNKNOWN_INVOICE, None)
        assert incident.payload["contractId"] == "00000000-dead-beef-0000-000000000000"
        assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()

    def test_failure_marks_the_invoice_failed_and_a_later_success_still_credits(
        self, client, lava, invoice, task_queue
    ):
        assert (
            deliver(client, lava.event(invoice.external_id, event_type="payment.failed")).json()["result"] == "failed"
        )
        assert (
            deliver(client, lava.event(invoice.external_id, event_type="payment.failed")).json()["result"] == "replay"
        )
        invoice.refresh_from_db()
        assert (invoice.status, invoice.error) == (PaymentStatus.FAILED, "Card declined")
        assert deliver(client, lava.event(invoice.external_id)).json()["result"] == "credited"
        assert task_queue.names() == ["payments.notify", "payments.notify"]

    def test_other_events_are_acknowledged_and_ignored(self, client, lava, invoice):
        event = lava.event(invoice.external_id, event_type="subscription.recurring.payment.success")
        assert deliver(client, event).json()["result"] == "ignored"
        assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()

    @pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", json.dumps({"eventType": "payment.success"}).encode()])
    def test_malformed_bodies_get_400(self, client, lava, body):
        response = client.post(WEBHOOK, data=body, content_type="application/json", HTTP_X_API_KEY=LAVA_WEBHOOK_KEY)
        assert response.status_code == 400

    def test_a_huge_body_gets_413(self, client, lava, settings):
        settings.LAVA_WEBHOOK_MAX_BODY_BYTES = 100
        response = deliver(client, {"contractId": "x" * 200})
        assert response.status_code == 413

    def test_only_post_is_allowed(self, client, lava):
        assert client.get(WEBHOOK).status_code == 405

    def test_the_service_refuses_a_missing_contract_id(self, lava):
        with pytest.raises(ValidationError):
            lava_webhook_handle(event={"eventType": "payment.success", "contractId": "  "})


@pytest.mark.django_db(transaction=True)
def test_webhook_answers_503_when_the_database_fails(client, lava, invoice, monkeypatch):
    from django.db import DatabaseError

    import nanobanana.payments.views as views

    def broken(*, event):
        raise DatabaseError("down")

    monkeypatch.setattr(views, "lava_webhook_handle", broken)
    assert deliver(client, lava.event(invoice.external_id)).status_code == 503


# --- through the bot -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestCardInTheBot:
    def test_card_button_gives_a_pay_link_and_the_webhook_credits_and_sends_a_receipt(self, chat, lava, client):
        chat.send("/start")
        chat.send("/topup")
        assert "или 99 ₽ картой" in chat.last_text()
        chat.tap("💳 100 ток. за 99 ₽")
        message = chat.bot_messages()[-1]
        assert "Нажмите кнопку, чтобы оплатить картой" in message.text
        payment = Payment.objects.get(provider="lava")
        assert any(button.get("url") == payment.payment_url for button in message.buttons)

        assert deliver(client, lava.event(payment.external_id)).status_code == 200
        chat.tasks.run_all()
        user = TelegramUser.objects.get(telegram_id=chat.user_id)
        assert wallet_balance(user=user).balance == settings.WELCOME_BONUS_TOKENS + 100
        assert "Оплата картой получена" in chat.last_text()
        assert payment.external_id in chat.last_text()
        assert reconcile() == []

    def test_a_failed_card_payment_tells_the_user(self, chat, lava, client):
        chat.send("/start")
        chat.send("/topup")
        chat.tap("💳 100 ток. за 99 ₽")
        payment = Payment.objects.get(provider="lava")
        deliver(client, lava.event(payment.external_id, event_type="payment.failed"))
        chat.tasks.run_all()
        assert "не прошла" in chat.last_text()

    def test_lava_being_down_gives_a_clear_answer_and_no_payment(self, chat, lava):
        chat.send("/start")
        chat.send("/topup")
        lava.faults.append("500")
        update = chat.tap("💳 100 ток. за 99 ₽")
        answer = chat.fake.callback_answer(update["callback_query"]["id"])
        assert "Оплата картой сейчас недоступна" in answer["text"]
        assert not Payment.objects.exists()

    def test_without_a_key_there_is_no_card_button(self, chat, lava, settings):
        settings.LAVA_API_KEY = ""
        chat.send("/start")
        chat.send("/topup")
        assert "₽" not in chat.last_text()
