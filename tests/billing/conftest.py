"""Factories for billing tests: Telegram users, funded wallets, admin operators."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, LedgerEntry, Wallet
from nanobanana.billing.services import wallet_credit

_telegram_ids = itertools.count(10_000_001)
_keys = itertools.count(1)

UserFactory = Callable[..., TelegramUser]
FundedUserFactory = Callable[..., TelegramUser]


def make_user(*, username: str = "") -> TelegramUser:
    telegram_id = next(_telegram_ids)
    return TelegramUser.objects.create(telegram_id=telegram_id, username=username or f"user{telegram_id}")


def fund(user: TelegramUser, amount: int) -> LedgerEntry:
    """Credit `amount` as a purchase under a fresh idempotency key."""
    entry, created = wallet_credit(
        user=user, amount=amount, kind=EntryKind.PURCHASE, idempotency_key=f"test-purchase:{next(_keys)}"
    )
    assert created
    return entry


@pytest.fixture
def credit() -> Callable[[TelegramUser, int], LedgerEntry]:
    """Credit tokens as a purchase under a fresh key: `credit(user, 50)`."""
    return fund


@pytest.fixture
def user_factory() -> UserFactory:
    return make_user


@pytest.fixture
def user(user_factory: UserFactory) -> TelegramUser:
    return user_factory()


@pytest.fixture
def funded_user_factory(user_factory: UserFactory) -> FundedUserFactory:
    def factory(balance: int = 100) -> TelegramUser:
        funded = user_factory()
        fund(funded, balance)
        return funded

    return factory


@pytest.fixture
def funded_user(funded_user_factory: FundedUserFactory) -> TelegramUser:
    """A user whose wallet holds 100 tokens, none held."""
    return funded_user_factory(100)


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser(username="operator", email="operator@example.com", password="pw")


@pytest.fixture
def wallet_of() -> Callable[[TelegramUser], Wallet]:
    """Read a user's wallet fresh from the database."""

    def read(user: TelegramUser) -> Wallet:
        return Wallet.objects.get(user=user)

    return read
