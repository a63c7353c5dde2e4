import pytest

from nanobanana.billing.models import EntryKind, Wallet
from nanobanana.billing.selectors import WalletBalance, ledger_counts, ledger_entries, wallet_balance
from nanobanana.billing.services import hold_capture, hold_place, wallet_credit

pytestmark = pytest.mark.django_db


def test_wallet_balance_is_zero_without_creating_a_wallet(user):
    assert wallet_balance(user=user) == WalletBalance(balance=0, held=0, available=0)
    assert not Wallet.objects.filter(user=user).exists()


def test_wallet_balance_subtracts_held_tokens(funded_user):
    hold_place(user=funded_user, amount=35, reference="generation:1")
    assert wallet_balance(user=funded_user) == WalletBalance(balance=100, held=35, available=65)


def test_ledger_entries_are_newest_first_and_limited(user):
    for number in range(1, 6):
        wallet_credit(user=user, amount=number, kind=EntryKind.PURCHASE, idempotency_key=f"k{number}")
    entries = ledger_entries(user=user, limit=3)
    assert [entry.amount for entry in entries] == [5, 4, 3]


def test_ledger_entries_include_captures_and_only_this_users_entries(funded_user, funded_user_factory):
    funded_user_factory(7)
    hold = hold_place(user=funded_user, amount=10, reference="generation:2")
    hold_capture(hold_id=hold.pk)
    assert [(entry.kind, entry.amount) for entry in ledger_entries(user=funded_user)] == [
        (EntryKind.CAPTURE, -10),
        (EntryKind.PURCHASE, 100),
    ]


def test_ledger_counts_counts_wallets_entries_and_holds(funded_user, funded_user_factory):
    funded_user_factory(5)
    hold_place(user=funded_user, amount=10, reference="generation:3")
    counts = ledger_counts()
    assert (counts.wallets, counts.entries, counts.holds) == (2, 2, 1)
