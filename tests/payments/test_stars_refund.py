"""Operator refunds of Stars payments: refundStarPayment through the emulated
Bot API, the credit reversed through the ledger, spent tokens refused."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse

import nanobanana.payments.admin  # noqa: F401 - registers the admin when autodiscovery is off
from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, Hold, HoldStatus, LedgerEntry
from nanobanana.billing.reconciliation import reconcile
from nanobanana.billing.selectors import wallet_balance
from nanobanana.billing.services import hold_capture, hold_place
from nanobanana.core.errors import Conflict, InsufficientFunds, NotFound, ValidationError
from nanobanana.payments.models import Payment, PaymentStatus, TokenPackage
from nanobanana.payments.stars import stars_refund_finish, stars_refund_request

PASSWORD = "pw"  # pragma: allowlist secret - a throwaway test operator
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def operator(db):
    return User.objects.create_superuser(username="operator", email="operator@example.com", password=PASSWORD)


def paid(chat, charge_id: str = "stxREFUND1") -> Payment:
    """The user pays the 100-token package with Stars (through the webhook)."""
    chat.send("/start")
    package = TokenPackage.objects.get(slug="tokens-100")
    update = chat.fake.sync.send_successful_payment(
        chat.user_id, payload=f"pkg:{package.pk}:u:{chat.user_id}", total_amount=50, charge_id=charge_id
    )
    assert chat.post(update) == 200
    return Payment.objects.get(external_id=charge_id)


def user_of(chat) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=chat.user_id)


def test_operator_refund_returns_the_stars_and_takes_the_tokens_back(chat, client, operator):
    payment = paid(chat)
    client.force_login(operator)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    assert "Refund" in client.get(url).content.decode()
    response = client.post(url, {"reason": "asked by the user"})
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDING
    assert wallet_balance(user=user_of(chat)).available == settings.WELCOME_BONUS_TOKENS  # the 100 are held

    chat.tasks.run_all()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert (payment.refunded_by, payment.refund_reason) == (operator, "asked by the user")
    assert chat.fake.star_charges["stxREFUND1"]["refunded"] is True
    assert str(chat.fake.calls("refundStarPayment")[0].params["user_id"]) == str(chat.user_id)
    balance = wallet_balance(user=user_of(chat))
    assert (balance.balance, balance.held) == (settings.WELCOME_BONUS_TOKENS, 0)
    reversal = LedgerEntry.objects.get(kind=EntryKind.CAPTURE)
    assert reversal.amount == -100
    assert reversal.hold == payment.refund_hold
    assert "возвращён" in chat.last_text()
    assert reconcile() == []


def test_refund_is_refused_when_the_tokens_were_already_spent(chat, client, operator):
    payment = paid(chat)
    user = user_of(chat)
    spend = hold_place(user=user, amount=settings.WELCOME_BONUS_TOKENS + 1, reference="generation:spent")
    hold_capture(hold_id=spend.pk)
    client.force_login(operator)
    response = client.post(reverse("admin:payments_payment_refund", args=[payment.pk]), {"reason": "chargeback"})
    assert response.status_code == 200
    assert "Refused" in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert not Hold.objects.filter(reference__startswith="refund:").exists()
    assert not chat.fake.calls("refundStarPayment")
    assert wallet_balance(user=user).balance == settings.WELCOME_BONUS_TOKENS + 100 - spend.amount


def test_telegram_refusing_the_refund_releases_the_tokens_and_a_retry_works(chat):
    payment = paid(chat)
    chat.fake.star_charges.pop("stxREFUND1")  # Telegram does not know this charge
    stars_refund_request(payment_id=payment.pk, operator=None, reason="test")
    chat.tasks.run_all()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert "CHARGE_NOT_FOUND" in payment.error
    assert Hold.objects.get(reference__startswith="refund:").status == HoldStatus.RELEASED
    assert wallet_balance(user=user_of(chat)).available == settings.WELCOME_BONUS_TOKENS + 100

    chat.fake.star_charges["stxREFUND1"] = {"user_id": chat.user_id, "amount": 50, "refunded": False}
    stars_refund_request(payment_id=payment.pk, operator=None, reason="second try")
    chat.tasks.run_all()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert wallet_balance(user=user_of(chat)).balance == settings.WELCOME_BONUS_TOKENS
    assert reconcile() == []


def test_a_charge_already_refunded_in_telegram_counts_as_refunded(chat):
    payment = paid(chat)
    chat.fake.star_charges["stxREFUND1"]["refunded"] = True  # an earlier answer was lost
    stars_refund_request(payment_id=payment.pk, operator=None, reason="retry after a crash")
    chat.tasks.run_all()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED


def test_refund_twice_is_a_conflict_and_takes_the_tokens_once(chat):
    payment = paid(chat)
    stars_refund_request(payment_id=payment.pk, operator=None, reason="once")
    with pytest.raises(Conflict):
        stars_refund_request(payment_id=payment.pk, operator=None, reason="twice")
    chat.tasks.run_all()
    with pytest.raises(Conflict):
        stars_refund_request(payment_id=payment.pk, operator=None, reason="thrice")
    assert LedgerEntry.objects.filter(kind=EntryKind.CAPTURE).count() == 1
    assert stars_refund_finish(payment_id=payment.pk, refunded=True).status == PaymentStatus.REFUNDED


def test_refund_needs_a_reason_and_an_existing_stars_payment(chat):
    payment = paid(chat)
    with pytest.raises(ValidationError):
        stars_refund_request(payment_id=payment.pk, operator=None, reason="  ")
    with pytest.raises(NotFound):
        stars_refund_request(payment_id=payment.pk + 1000, operator=None, reason="x")


def test_refund_request_with_too_few_tokens_raises_insufficient_funds(chat):
    payment = paid(chat)
    spend = hold_place(user=user_of(chat), amount=settings.WELCOME_BONUS_TOKENS + 50, reference="generation:x")
    hold_capture(hold_id=spend.pk)
    with pytest.raises(InsufficientFunds):
        stars_refund_request(payment_id=payment.pk, operator=None, reason="x")
