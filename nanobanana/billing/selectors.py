"""Reads of wallets and the ledger. Nothing here writes (not even a wallet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nanobanana.billing.models import Hold, LedgerEntry, Wallet

if TYPE_CHECKING:
    from nanobanana.accounts.models import TelegramUser


@dataclass(frozen=True)
class WalletBalance:
    """What a user has: `available` = `balance` - `held` is what they can spend."""

    balance: int
    held: int
    available: int


@dataclass(frozen=True)
class LedgerCounts:
    wallets: int
    entries: int
    holds: int


def wallet_balance(*, user: TelegramUser) -> WalletBalance:
    """The user's totals; zeros when they have no wallet yet (none is created)."""
    row = Wallet.objects.filter(user=user).values_list("balance", "held").first()
    if row is None:
        return WalletBalance(balance=0, held=0, available=0)
    balance, held = row
    return WalletBalance(balance=balance, held=held, available=balance - held)


def ledger_entries(*, user: TelegramUser, limit: int = 20) -> list[LedgerEntry]:
    """The user's latest `limit` entries, newest first."""
    return list(LedgerEntry.objects.filter(wallet__user=user).order_by("-id")[: max(limit, 0)])


def ledger_counts() -> LedgerCounts:
    """How many wallets, entries and holds exist (for reconciliation reports)."""
    return LedgerCounts(
        wallets=Wallet.objects.count(),
        entries=LedgerEntry.objects.count(),
        holds=Hold.objects.count(),
    )
