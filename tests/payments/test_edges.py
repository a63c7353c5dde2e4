"""Edges of payments and bonuses: races, replays of tasks, admin guards, odd answers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from celery import current_app
from django.contrib.auth.models import User
from django.db import connections
from django.urls import reverse

import nanobanana.payments.admin  # noqa: F401 - registers the admin when autodiscovery is off
from nanobanana.billing.bonuses import (
    daily_bonus_claim,
    referral_attach,
    referral_code_get_or_create,
    referral_reward_on_purchase,
)
from nanobanana.billing.models import (
    DailyBonusClaim,
    EntryKind,
    LedgerEntry,
    PromoCode,
    PromoRedemption,
    Referral,
    ReferralCode,
)
from nanobanana.billing.promo import promo_redeem
from nanobanana.billing.services import wallet_credit
from nanobanana.core.errors import PaymentError, ValidationError
from nanobanana.payments import stars
from nanobanana.payments.lava import LavaClient
from nanobanana.payments.models import IncidentKind, Payment, PaymentIncident, PaymentStatus, Provider, TokenPackage

PASSWORD = "pw"  # pragma: allowlist secret - a throwaway test operator


def race(count: int, work) -> list:
    barrier = threading.Barrier(count)

    def run(index: int):
        try:
            barrier.wait()
            return work(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def stars_payment(user, *, status=PaymentStatus.PAID, charge="stxEDGE") -> Payment:
    return Payment.objects.create(
        provider=Provider.STARS,
        external_id=charge,
        user=user,
        package=TokenPackage.objects.get(slug="tokens-100"),
        tokens=100,
        amount=Decimal(50),
        currency="XTR",
        status=status,
    )


# --- races on PostgreSQL -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestRaces:
    def test_racing_daily_claims_grant_one_bonus(self, make_user):
        user = make_user()
        results = race(8, lambda _: daily_bonus_claim(user=user).claimed)
        assert results.count(True) == 1
        assert DailyBonusClaim.objects.count() == 1
        assert LedgerEntry.objects.filter(kind=EntryKind.BONUS).count() == 1

    def test_racing_code_requests_agree_on_one_code(self, make_user):
        user = make_user()
        codes = race(8, lambda _: referral_code_get_or_create(user=user))
        assert len(set(codes)) == 1
        assert ReferralCode.objects.count() == 1

    def test_racing_invites_of_one_user_attach_one(self, make_user):
        friend = make_user()
        codes = [referral_code_get_or_create(user=make_user()) for _ in range(6)]
        outcomes = race(6, lambda index: referral_attach(referred=friend, code=codes[index]))
        assert outcomes.count("attached") == 1
        assert set(outcomes) <= {"attached", "already_referred"}
        assert Referral.objects.count() == 1

    def test_racing_rewards_pay_once(self, make_user):
        referrer, friend = make_user(), make_user()
        referral_attach(referred=friend, code=referral_code_get_or_create(user=referrer))
        wallet_credit(user=friend, amount=100, kind=EntryKind.PURCHASE, idempotency_key="first")
        rewarded = race(6, lambda _: referral_reward_on_purchase(user=friend))
        assert rewarded.count(True) == 1
        assert LedgerEntry.objects.filter(idempotency_key__startswith="referral:").count() == 2

    def test_racing_deliveries_of_one_stars_charge_credit_once(self, packages, make_user):
        user = make_user()
        package = TokenPackage.objects.get(slug="tokens-100")
        payload = stars.stars_invoice_payload(package=package, telegram_id=user.telegram_id)
        outcomes = race(
            6,
            lambda _: (
                stars.stars_payment_record(
                    user=user, payload=payload, currency="XTR", total_amount=50, charge_id="stxRACE"
                ).credited
            ),
        )
        assert outcomes.count(True) == 1
        assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count() == 1


# --- Stars services ---------------------------------------------------------------------------------


@pytest.mark.django_db
class TestStarsServices:
    def test_a_payment_without_a_charge_id_is_refused(self, packages, make_user):
        with pytest.raises(ValidationError):
            stars.stars_payment_record(
                user=make_user(), payload="pkg:1:u:1", currency="XTR", total_amount=50, charge_id=""
            )

    def test_a_charge_that_lands_between_lookup_and_insert_is_a_replay(self, packages, make_user, monkeypatch):
        user = make_user()
        existing = stars_payment(user, charge="stxLATE")
        monkeypatch.setattr(stars, "_payment_by_charge", lambda charge_id: None)
        package = TokenPackage.objects.get(slug="tokens-100")
        outcome = stars.stars_payment_record(
            user=user,
            payload=stars.stars_invoice_payload(package=package, telegram_id=user.telegram_id),
            currency="XTR",
            total_amount=50,
            charge_id="stxLATE",
        )
        assert (outcome.payment, outcome.credited) == (existing, False)
        assert not LedgerEntry.objects.exists()

    def test_finishing_a_refund_twice_changes_nothing(self, packages, make_user):
        payment = stars_payment(make_user())
        assert stars.stars_refund_finish(payment_id=payment.pk, refunded=True).status == PaymentStatus.PAID

    def test_refunding_a_card_payment_is_not_a_stars_refund(self, packages, make_user):
        payment = stars_payment(make_user())
        Payment.objects.filter(pk=payment.pk).update(provider=Provider.LAVA)
        with pytest.raises(Exception, match="does not exist"):
            stars.stars_refund_request(payment_id=payment.pk, operator=None, reason="x")

    def test_payload_parsing(self):
        assert stars.stars_payload_parse("pkg:12:u:34") == stars.ParsedPayload(package_id=12, telegram_id=34)
        for bad in ("", "pkg:x:u:1", "pkg:1:u:1:extra", "anything"):
            assert stars.stars_payload_parse(bad) is None

    def test_readable_names(self, packages, make_user):
        payment = stars_payment(make_user())
        incident = PaymentIncident.objects.create(
            provider=Provider.LAVA, external_id="abc", kind=IncidentKind.UNKNOWN_INVOICE
        )
        promo = PromoCode.objects.create(code="x1", tokens=1, max_uses=1)
        assert str(payment) == "stars stxEDGE (paid)"
        assert str(payment.package) == "tokens-100: 100 tokens"
        assert str(incident) == "lava abc: unknown_invoice"
        assert str(promo) == "X1 (1 tokens, 0/1)"
        redemption = promo_redeem(user=payment.user, code="x1")
        assert "X1 by" in str(redemption)
        claim = daily_bonus_claim(user=payment.user)
        assert "daily bonus" in str(DailyBonusClaim.objects.get(day=claim.day))
        code = referral_code_get_or_create(user=payment.user)
        assert code in str(ReferralCode.objects.get())
        friend = make_user()
        referral_attach(referred=friend, code=code)
        assert str(Referral.objects.get()) == f"{payment.user.pk} -> {friend.pk}"
        assert PromoRedemption.objects.count() == 1


# --- tasks -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("task_queue")  # registers every app's tasks
class TestTasks:
    def test_a_refund_task_for_a_payment_not_being_refunded_does_nothing(self, packages, make_user, fake_telegram):
        payment = stars_payment(make_user())
        assert current_app.tasks["payments.stars_refund"].apply(args=(payment.pk,)).get() == "skipped"
        assert not fake_telegram.calls("refundStarPayment")

    def test_notify_for_a_pending_invoice_sends_nothing(self, packages, make_user, fake_telegram):
        payment = stars_payment(make_user(), status=PaymentStatus.PENDING)
        assert current_app.tasks["payments.notify"].apply(args=(payment.pk,)).get() == "skipped"
        assert not fake_telegram.calls("sendMessage")

    def test_a_receipt_to_a_user_who_blocked_the_bot_is_dropped_quietly(self, packages, make_user, fake_telegram):
        user = make_user()
        fake_telegram.user(user.telegram_id)
        fake_telegram.block(user.telegram_id)
        payment = stars_payment(user)
        assert current_app.tasks["payments.notify"].apply(args=(payment.pk,)).get() == "receipt"


# --- admin -------------------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, db, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    operator = User.objects.create_superuser(username="op", email="op@example.com", password=PASSWORD)
    client.force_login(operator)
    return client


@pytest.mark.django_db
class TestAdmin:
    def test_the_payment_page_offers_a_refund_only_for_paid_stars(self, staff_client, packages, make_user):
        payment = stars_payment(make_user())
        page = staff_client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
        assert "Refund Stars" in page
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.REFUNDED)
        page = staff_client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
        assert "Refund Stars" not in page

    def test_refund_of_a_payment_already_refunded_shows_the_conflict(self, staff_client, packages, make_user):
        payment = stars_payment(make_user(), status=PaymentStatus.REFUNDED)
        response = staff_client.post(reverse("admin:payments_payment_refund", args=[payment.pk]), {"reason": "x"})
        assert response.status_code == 200
        assert "is refunded, not paid" in response.content.decode()

    def test_refund_page_of_an_unknown_payment_is_404(self, staff_client):
        assert staff_client.get(reverse("admin:payments_payment_refund", args=[999999])).status_code == 404

    def test_refund_needs_the_change_permission(self, client, packages, make_user, settings):
        payment = stars_payment(make_user())
        viewer = User.objects.create_user(username="viewer", password=PASSWORD, is_staff=True)
        client.force_login(viewer)
        assert client.get(reverse("admin:payments_payment_refund", args=[payment.pk])).status_code == 403

    def test_packages_incidents_and_promo_codes_are_listed(self, staff_client, packages):
        for name in ("payments_tokenpackage", "payments_paymentincident", "payments_payment"):
            assert staff_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
        for name in ("billing_promocode", "billing_promoredemption", "billing_dailybonusclaim", "billing_referral"):
            assert staff_client.get(reverse(f"admin:{name}_changelist")).status_code == 200


# --- lava.top client answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, json={"id": 123, "amountTotal": {"amount": 1, "currency": "RUB"}, "paymentUrl": "u"}),
        httpx.Response(201, json={"id": "a", "amountTotal": {"amount": "x", "currency": "RUB"}, "paymentUrl": "u"}),
        httpx.Response(400, content=b"<html>bad</html>"),
        httpx.Response(403, json=["forbidden"]),
    ],
)
def test_odd_lava_answers_are_permanent_errors(response):
    client = LavaClient(
        api_key="k", base_url="https://gate.lava.top", timeout=5, transport=httpx.MockTransport(lambda _: response)
    )
    with pytest.raises(PaymentError):
        client.invoice_create(email="a@example.com", offer_id="o", currency="RUB", buyer_language="RU")


@pytest.mark.django_db
def test_a_body_over_djangos_upload_limit_gets_413(client, settings):
    settings.LAVA_WEBHOOK_API_KEY = "k"  # pragma: allowlist secret
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = client.post(
        "/api/payments/lava/webhook",
        data=b'{"contractId": "abcdefgh"}',
        content_type="application/json",
        HTTP_X_API_KEY="k",
    )
    assert response.status_code == 413
