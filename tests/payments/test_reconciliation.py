"""The daily reconciliation: billing and payments against the ledger, and the
ops chat alerted on a mismatch."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_celery_beat.models import PeriodicTask

from nanobanana.billing.models import EntryKind, Wallet
from nanobanana.billing.services import wallet_credit
from nanobanana.ops.reconciliation import reconcile_and_alert
from nanobanana.ops.schedules import schedules_sync
from nanobanana.payments.models import Payment, PaymentStatus, Provider, TokenPackage
from nanobanana.payments.reconciliation import payments_reconcile

OPS_CHAT = 900


def payment(user, *, status=PaymentStatus.PAID, external_id="stxR1", tokens=100) -> Payment:
    return Payment.objects.create(
        provider=Provider.STARS,
        external_id=external_id,
        user=user,
        package=TokenPackage.objects.get(slug="tokens-100"),
        tokens=tokens,
        amount=Decimal(50),
        currency="XTR",
        status=status,
    )


@pytest.mark.django_db
class TestPaymentsReconcile:
    def test_a_credited_payment_is_clean(self, packages, make_user):
        user = make_user()
        paid = payment(user)
        wallet_credit(user=user, amount=100, kind=EntryKind.PURCHASE, idempotency_key=paid.ledger_key)
        assert payments_reconcile() == []

    def test_a_paid_payment_without_its_entry_is_reported(self, packages, make_user):
        payment(make_user())
        assert "has no entry" in payments_reconcile()[0]

    def test_an_entry_of_the_wrong_size_is_reported(self, packages, make_user):
        user = make_user()
        paid = payment(user)
        wallet_credit(user=user, amount=99, kind=EntryKind.PURCHASE, idempotency_key=paid.ledger_key)
        assert "credits 99" in payments_reconcile()[0]

    def test_a_pending_payment_with_an_entry_is_reported(self, packages, make_user):
        user = make_user()
        pending = payment(user, status=PaymentStatus.PENDING)
        wallet_credit(user=user, amount=100, kind=EntryKind.PURCHASE, idempotency_key=pending.ledger_key)
        assert "is pending but" in payments_reconcile()[0]

    def test_a_refund_whose_tokens_never_left_is_reported(self, packages, make_user):
        user = make_user()
        refunded = payment(user, status=PaymentStatus.REFUNDED)
        wallet_credit(user=user, amount=100, kind=EntryKind.PURCHASE, idempotency_key=refunded.ledger_key)
        assert "not taken back" in payments_reconcile()[0]

    def test_an_entry_for_no_payment_is_reported(self, make_user):
        wallet_credit(user=make_user(), amount=5, kind=EntryKind.PURCHASE, idempotency_key="payment:stars:ghost")
        assert payments_reconcile() == ["entry payment:stars:ghost credits a payment that does not exist"]


@pytest.mark.django_db(transaction=True)
class TestDailyRun:
    def test_clean_ledger_sends_nothing(self, fake_telegram, make_user, settings):
        settings.OPS_CHAT_ID = str(OPS_CHAT)
        make_user(tokens=10)
        assert reconcile_and_alert() == 0
        assert not fake_telegram.calls("sendMessage")

    def test_a_drifted_balance_alerts_the_ops_chat(self, fake_telegram, make_user, settings, task_queue):
        settings.OPS_CHAT_ID = str(OPS_CHAT)
        fake_telegram.user(OPS_CHAT, first_name="Ops")
        user = make_user(tokens=10)
        Wallet.objects.filter(user=user).update(balance=25)  # written around the services
        from celery import current_app

        assert current_app.tasks["ops.reconcile"].apply().get() == 2  # sum and latest balance_after
        alert = fake_telegram.last_message(OPS_CHAT)
        assert alert is not None
        assert "Reconciliation found 2 problem(s)" in alert.text
        assert "balance 25 != sum of entries 10" in alert.text

    def test_without_an_ops_chat_the_problem_is_only_logged(self, fake_telegram, make_user, settings, caplog):
        settings.OPS_CHAT_ID = ""
        user = make_user(tokens=10)
        Wallet.objects.filter(user=user).update(balance=25)
        assert reconcile_and_alert() == 2
        assert not fake_telegram.calls("sendMessage")
        assert "OPS_CHAT_ID is unset" in caplog.text

    def test_a_long_list_is_cut_to_one_message(self, fake_telegram, make_user, settings):
        settings.OPS_CHAT_ID = str(OPS_CHAT)
        fake_telegram.user(OPS_CHAT, first_name="Ops")
        for _ in range(20):
            Wallet.objects.filter(user=make_user(tokens=10)).update(balance=11)
        assert reconcile_and_alert() == 40
        alert = fake_telegram.last_message(OPS_CHAT)
        assert alert is not None
        assert "and 10 more" in alert.text
        assert len(alert.text) <= 4096


@pytest.mark.django_db
def test_beat_runs_reconciliation_daily():
    schedules_sync()
    task = PeriodicTask.objects.get(name="nanobanana:reconcile")
    assert (task.task, task.enabled, task.interval.every, task.interval.period) == (
        "ops.reconcile",
        True,
        86400,
        "seconds",
    )
