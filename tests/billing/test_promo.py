"""Promo codes: fixed tokens, total and per-user limits, a validity window,
atomic redemption."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections

from nanobanana.billing.models import EntryKind, LedgerEntry, PromoCode, PromoRedemption
from nanobanana.billing.promo import PromoRejected, promo_redeem
from nanobanana.billing.reconciliation import reconcile
from nanobanana.billing.selectors import wallet_balance
from nanobanana.core import clock


def make_code(**fields) -> PromoCode:
    values = {"code": "spring", "tokens": 40, "max_uses": 10, "per_user_limit": 1, **fields}
    return PromoCode.objects.create(**values)


def rejection(user, code: str) -> str:
    with pytest.raises(PromoRejected) as caught:
        promo_redeem(user=user, code=code)
    return caught.value.code


@pytest.mark.django_db
class TestRedeem:
    def test_credits_the_tokens_as_a_promo_entry_and_counts_the_use(self, user):
        promo = make_code()
        redemption = promo_redeem(user=user, code="SPRING")
        assert redemption.entry.kind == EntryKind.PROMO
        assert redemption.entry.amount == 40
        assert wallet_balance(user=user).available == 40
        promo.refresh_from_db()
        assert promo.uses == 1

    def test_codes_are_stored_upper_case_and_matched_in_any_case_and_spacing(self, user):
        assert make_code(code="  Summer25 ").code == "SUMMER25"
        assert promo_redeem(user=user, code=" summer25\n").entry.amount == 40

    def test_unknown_empty_and_overlong_codes_are_refused(self, user):
        make_code()
        assert rejection(user, "nope") == "promo_unknown"
        assert rejection(user, "   ") == "promo_unknown"
        assert rejection(user, "x" * 33) == "promo_unknown"

    def test_a_switched_off_code_is_refused(self, user):
        make_code(is_active=False)
        assert rejection(user, "spring") == "promo_not_active"

    def test_the_validity_window_is_enforced_at_both_ends(self, user):
        now = clock.now()
        make_code(code="early", valid_from=now + timedelta(hours=1))
        make_code(code="late", valid_until=now - timedelta(seconds=1))
        make_code(code="inside", valid_from=now - timedelta(hours=1), valid_until=now + timedelta(hours=1))
        assert rejection(user, "early") == "promo_not_active"
        assert rejection(user, "late") == "promo_not_active"
        assert promo_redeem(user=user, code="inside").entry.amount == 40

    def test_per_user_limit_of_one(self, user):
        make_code()
        promo_redeem(user=user, code="spring")
        assert rejection(user, "spring") == "promo_used"
        assert wallet_balance(user=user).available == 40

    def test_per_user_limit_of_two_gives_two_entries_with_their_own_keys(self, user):
        make_code(per_user_limit=2)
        first = promo_redeem(user=user, code="spring")
        second = promo_redeem(user=user, code="spring")
        assert (first.number, second.number) == (1, 2)
        assert first.entry.idempotency_key != second.entry.idempotency_key
        assert rejection(user, "spring") == "promo_used"
        assert wallet_balance(user=user).available == 80

    def test_the_total_limit_is_enforced(self, user_factory):
        make_code(max_uses=2)
        promo_redeem(user=user_factory(), code="spring")
        promo_redeem(user=user_factory(), code="spring")
        assert rejection(user_factory(), "spring") == "promo_exhausted"

    def test_no_code_ships_in_migrations_or_fixtures(self):
        assert not PromoCode.objects.exists()


def free_connection_slots(reserve: int = 8) -> int:
    """Connections this shared PostgreSQL can still give us (other test runs use it too)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)")
        return int(cursor.fetchone()[0]) - reserve


@pytest.mark.django_db(transaction=True)
def test_hundred_concurrent_redemptions_of_a_ten_use_code_give_exactly_ten(user_factory):
    """100 redemptions by 100 users, released at once by a barrier. Each thread
    holds a connection; the server allows 100 in all, so when other runs share
    it the attempts are spread over as many threads as there are free slots
    (each thread then makes several attempts back to back)."""
    assert connection.vendor == "postgresql"
    make_code(max_uses=10)
    users = [user_factory() for _ in range(100)]
    workers = max(10, min(100, free_connection_slots()))
    barrier = threading.Barrier(workers)

    def attempt(worker: int) -> list[str]:
        outcomes = []
        try:
            barrier.wait()
            for index in range(worker, 100, workers):
                try:
                    promo_redeem(user=users[index], code="spring")
                    outcomes.append("ok")
                except PromoRejected as rejected:
                    outcomes.append(rejected.code)
            return outcomes
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = [outcome for batch in pool.map(attempt, range(workers)) for outcome in batch]
    assert len(outcomes) == 100
    assert outcomes.count("ok") == 10
    assert outcomes.count("promo_exhausted") == 90
    assert PromoCode.objects.get().uses == 10
    assert PromoRedemption.objects.count() == 10
    assert LedgerEntry.objects.filter(kind=EntryKind.PROMO).count() == 10
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_one_user_racing_the_same_code_redeems_it_once(user):
    make_code(max_uses=100)
    barrier = threading.Barrier(20)

    def attempt(_: int) -> str:
        try:
            barrier.wait()
            promo_redeem(user=user, code="spring")
            return "ok"
        except PromoRejected as rejected:
            return rejected.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count("ok") == 1
    assert wallet_balance(user=user).available == 40
