"""Real threads against real PostgreSQL: the row lock and conditional updates
must hold when writers race. Each thread uses (and closes) its own connection."""

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections

from nanobanana.billing.models import EntryKind, Hold, HoldStatus, LedgerEntry, Wallet
from nanobanana.billing.reconciliation import reconcile
from nanobanana.billing.services import hold_capture, hold_place, hold_release, wallet_credit
from nanobanana.core.errors import Conflict, InsufficientFunds

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call at once (released by one barrier); return results or raised exceptions."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=30)
            return call()
        except Exception as error:  # the caller inspects what each racer got
            return error
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_fifty_concurrent_holds_on_fifty_tokens_place_exactly_five(funded_user_factory):
    user = funded_user_factory(50)
    results = race(
        [functools.partial(hold_place, user=user, amount=10, reference=f"generation:{n}") for n in range(50)]
    )

    placed = [r for r in results if isinstance(r, Hold)]
    refused = [r for r in results if isinstance(r, InsufficientFunds)]
    assert len(placed) == 5
    assert len(refused) == 45, [r for r in results if not isinstance(r, Hold | InsufficientFunds)]
    assert all(error.available >= 0 for error in refused)
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance, wallet.held, wallet.available) == (50, 50, 0)
    assert Hold.objects.filter(wallet=wallet, status=HoldStatus.HELD).count() == 5
    assert reconcile() == []


def test_concurrent_capture_and_release_of_one_hold_have_exactly_one_winner(funded_user_factory):
    for round_number in range(5):
        user = funded_user_factory(100)
        hold = hold_place(user=user, amount=40, reference=f"generation:race-{round_number}")
        capture, release = (
            functools.partial(hold_capture, hold_id=hold.pk),
            functools.partial(hold_release, hold_id=hold.pk),
        )
        results = race([capture, release] * 3)

        hold.refresh_from_db()
        conflicts = [r for r in results if isinstance(r, Conflict)]
        successes = [r for r in results if isinstance(r, Hold)]
        assert len(conflicts) == 3, results  # every racer of the losing kind
        assert len(successes) == 3
        assert all(r.status == hold.status for r in successes)
        wallet = Wallet.objects.get(user=user)
        capture_entries = LedgerEntry.objects.filter(hold=hold).count()
        if hold.status == HoldStatus.CAPTURED:
            assert (wallet.balance, wallet.held, capture_entries) == (60, 0, 1)
        else:
            assert hold.status == HoldStatus.RELEASED
            assert (wallet.balance, wallet.held, capture_entries) == (100, 0, 0)
    assert reconcile() == []


def test_twenty_concurrent_credits_with_one_key_write_one_entry(user_factory):
    user = user_factory()  # no wallet yet: the wallet's creation races too
    results = race(
        [
            lambda: wallet_credit(user=user, amount=25, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-x")
            for _ in range(20)
        ]
    )

    assert all(isinstance(r, tuple) for r in results), results
    assert sum(1 for _, created in results if created) == 1
    assert len({entry.pk for entry, _ in results}) == 1
    assert LedgerEntry.objects.filter(idempotency_key="stars:charge-x").count() == 1
    assert Wallet.objects.get(user=user).balance == 25


def test_concurrent_credits_with_distinct_keys_all_land(user_factory):
    user = user_factory()
    race(
        [
            functools.partial(wallet_credit, user=user, amount=n, kind=EntryKind.PURCHASE, idempotency_key=f"k:{n}")
            for n in range(1, 21)
        ]
    )
    assert Wallet.objects.get(user=user).balance == sum(range(1, 21))
    assert reconcile() == []
