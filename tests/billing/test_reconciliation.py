import pytest
from django.core.management import call_command, execute_from_command_line
from django.db.models import F

from nanobanana.billing.models import EntryKind, Hold, HoldStatus, LedgerEntry, Wallet
from nanobanana.billing.reconciliation import reconcile
from nanobanana.billing.services import hold_capture, hold_place, hold_release, wallet_credit
from nanobanana.core import clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_ledger(funded_user_factory):
    """Two wallets with credits, an active, a captured, a partly captured and a released hold."""
    first, second = funded_user_factory(100), funded_user_factory(50)
    hold_place(user=first, amount=10, reference="generation:active")
    hold_capture(hold_id=hold_place(user=first, amount=20, reference="generation:full").pk)
    hold_capture(hold_id=hold_place(user=first, amount=20, reference="generation:part").pk, amount=5)
    hold_release(hold_id=hold_place(user=second, amount=30, reference="generation:released").pk)
    wallet_credit(user=second, amount=7, kind=EntryKind.REFUND, idempotency_key="refund:1")
    return first, second


def test_reconcile_passes_on_clean_data(busy_ledger):
    assert reconcile() == []


def test_reconcile_finds_a_balance_that_drifted_from_the_ledger(busy_ledger):
    first, _ = busy_ledger
    Wallet.objects.filter(user=first).update(balance=F("balance") + 5)
    problems = reconcile()
    wallet = Wallet.objects.get(user=first)
    assert any(f"wallet {wallet.pk}" in p and "sum of entries" in p for p in problems)
    assert any(f"wallet {wallet.pk}" in p and "balance_after" in p for p in problems)


def test_reconcile_finds_held_that_drifted_from_active_holds(busy_ledger):
    first, _ = busy_ledger
    Wallet.objects.filter(user=first).update(held=0)
    problems = reconcile()
    assert problems == [
        f"wallet {Wallet.objects.get(user=first).pk} (user {first.pk}): held 0 != sum of active holds 10"
    ]


def test_reconcile_finds_a_hold_with_a_capture_entry_that_is_not_captured(busy_ledger):
    hold = Hold.objects.get(reference="generation:full")
    Hold.objects.filter(pk=hold.pk).update(status=HoldStatus.RELEASED, captured_amount=0)
    problems = reconcile()
    assert any(f"hold {hold.pk}" in p and "has a capture entry but status is released" in p for p in problems)


def test_reconcile_finds_a_captured_hold_without_capture_entry(busy_ledger):
    _, second = busy_ledger
    # A hold resolved by hand, around the services: no capture entry.
    hold = Hold.objects.create(
        wallet=Wallet.objects.get(user=second),
        amount=5,
        status=HoldStatus.CAPTURED,
        captured_amount=5,
        reference="generation:by-hand",
        resolved_at=clock.now(),
    )
    problems = reconcile()
    assert any(f"hold {hold.pk}" in p and "0 capture entries" in p for p in problems)


def test_reconcile_finds_a_captured_amount_that_disagrees_with_its_entry(busy_ledger):
    hold = Hold.objects.get(reference="generation:part")
    Hold.objects.filter(pk=hold.pk).update(captured_amount=6)
    problems = reconcile()
    assert any(f"hold {hold.pk}" in p and "captured_amount 6 != capture entry 5" in p for p in problems)


def test_reconcile_finds_an_entry_whose_hold_is_in_another_wallet(busy_ledger):
    _, second = busy_ledger
    entry = LedgerEntry.objects.get(hold__reference="generation:full")
    LedgerEntry.objects.filter(pk=entry.pk).update(wallet=Wallet.objects.get(user=second))
    problems = reconcile()
    assert any(f"entry {entry.pk}" in p and "another wallet" in p for p in problems)


def test_command_reports_ok_with_counts(busy_ledger, capsys):
    call_command("billing_reconcile")
    assert capsys.readouterr().out.strip() == "ledger OK: 2 wallets, 5 entries, 4 holds"


@pytest.mark.django_db(transaction=True)
def test_command_prints_each_problem_and_exits_1(funded_user_factory, capsys):
    """Run as `manage.py billing_reconcile` would: the process exit code is 1."""
    user = funded_user_factory(100)
    Wallet.objects.filter(user=user).update(balance=90)
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "billing_reconcile"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "balance 90 != sum of entries 100" in err
    assert "ledger OK" not in err
