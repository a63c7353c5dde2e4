"""Any sequence of billing operations keeps the ledger, the cached totals and
a simple in-memory model of the wallet in agreement."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.db.models import CharField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, Hold, HoldStatus, LedgerEntry, Wallet
from nanobanana.billing.reconciliation import reconcile
from nanobanana.billing.services import hold_capture, hold_place, hold_release, wallet_adjust, wallet_credit
from nanobanana.core.errors import Conflict, InsufficientFunds

_telegram_ids = itertools.count(20_000_001)

CREDIT_KINDS = [EntryKind.PURCHASE, EntryKind.BONUS, EntryKind.PROMO, EntryKind.REFUND]


@dataclass
class ModelHold:
    reference: str
    amount: int
    status: str = HoldStatus.HELD
    captured: int = 0


class LedgerMachine(RuleBasedStateMachine):
    """One fresh user per run; the model is two integers and a dict of holds."""

    def __init__(self) -> None:
        super().__init__()
        # Each run gets its own savepoint, rolled back in teardown, so a failed
        # run cannot leave rows behind for the next one (or for reconcile()).
        self.run_atomic = transaction.atomic()
        self.run_atomic.__enter__()
        self.user = TelegramUser.objects.create(telegram_id=next(_telegram_ids))
        self.balance = 0
        self.held = 0
        self.holds: dict[int, ModelHold] = {}
        self.credits: dict[str, tuple[EntryKind, int]] = {}
        self.serial = itertools.count(1)

    @property
    def available(self) -> int:
        return self.balance - self.held

    # --- operations -----------------------------------------------------------

    @rule(amount=st.integers(1, 200), kind=st.sampled_from(CREDIT_KINDS))
    def credit(self, amount: int, kind: EntryKind) -> None:
        key = f"prop:{self.user.pk}:credit:{next(self.serial)}"
        entry, created = wallet_credit(user=self.user, amount=amount, kind=kind, idempotency_key=key)
        assert created
        assert entry.balance_after == self.balance + amount
        self.balance += amount
        self.credits[key] = (kind, amount)

    @precondition(lambda self: self.credits)
    @rule(data=st.data())
    def replay_credit(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.credits)))
        kind, amount = self.credits[key]
        entry, created = wallet_credit(user=self.user, amount=amount, kind=kind, idempotency_key=key)
        assert not created
        assert entry.amount == amount

    @rule(amount=st.integers(1, 150))
    def place_hold(self, amount: int) -> None:
        reference = f"prop:{self.user.pk}:hold:{next(self.serial)}"
        if amount > self.available:
            with pytest.raises(InsufficientFunds) as error:
                hold_place(user=self.user, amount=amount, reference=reference)
            assert (error.value.required, error.value.available) == (amount, self.available)
            return
        hold = hold_place(user=self.user, amount=amount, reference=reference)
        self.holds[hold.pk] = ModelHold(reference=reference, amount=amount)
        self.held += amount

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def replay_hold(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        expected = self.holds[hold_id]
        hold = hold_place(user=self.user, amount=expected.amount, reference=expected.reference)
        assert (hold.pk, hold.status) == (hold_id, expected.status)

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), partial=st.booleans())
    def capture(self, data: st.DataObject, partial: bool) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        expected = self.holds[hold_id]
        amount = data.draw(st.integers(1, expected.amount)) if partial else None
        if expected.status == HoldStatus.RELEASED:
            with pytest.raises(Conflict):
                hold_capture(hold_id=hold_id, amount=amount)
            return
        hold = hold_capture(hold_id=hold_id, amount=amount)
        if expected.status == HoldStatus.HELD:
            expected.status = HoldStatus.CAPTURED
            expected.captured = expected.amount if amount is None else amount
            self.balance -= expected.captured
            self.held -= expected.amount
        assert (hold.status, hold.captured_amount) == (HoldStatus.CAPTURED, expected.captured)

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        expected = self.holds[hold_id]
        if expected.status == HoldStatus.CAPTURED:
            with pytest.raises(Conflict):
                hold_release(hold_id=hold_id)
            return
        hold = hold_release(hold_id=hold_id)
        if expected.status == HoldStatus.HELD:
            expected.status = HoldStatus.RELEASED
            self.held -= expected.amount
        assert hold.status == HoldStatus.RELEASED

    @rule(amount=st.integers(-150, 150).filter(bool))
    def adjust(self, amount: int) -> None:
        if amount < 0 and self.available + amount < 0:
            with pytest.raises(InsufficientFunds):
                wallet_adjust(user=self.user, amount=amount, reason="property test", operator=None)
            return
        entry = wallet_adjust(user=self.user, amount=amount, reason="property test", operator=None)
        self.balance += amount
        assert entry.balance_after == self.balance

    # --- what must hold after every step --------------------------------------

    @invariant()
    def database_agrees_with_the_model_and_itself(self) -> None:
        totals = (
            Wallet.objects.filter(user=self.user)
            .annotate(
                entries_total=Subquery(_sum_of(LedgerEntry.objects.filter(wallet=OuterRef("pk")))),
                active_total=Subquery(_sum_of(Hold.objects.filter(wallet=OuterRef("pk"), status=HoldStatus.HELD))),
            )
            .values_list("balance", "held", "entries_total", "active_total")
            .first()
        )
        balance, held, entries_total, active_total = totals or (0, 0, None, None)
        assert balance == (entries_total or 0)
        assert held == (active_total or 0)
        assert balance - held >= 0
        assert (balance, held) == (self.balance, self.held)
        stored = dict(
            Hold.objects.filter(wallet__user=self.user)
            .annotate(state=Concat("status", Value(":"), Cast("captured_amount", CharField())))
            .values_list("pk", "state")
        )
        assert stored == {pk: f"{h.status}:{h.captured}" for pk, h in self.holds.items()}

    def teardown(self) -> None:
        try:
            assert reconcile() == []
        finally:
            transaction.set_rollback(True)
            self.run_atomic.__exit__(None, None, None)


def _sum_of(queryset: QuerySet[Any]) -> QuerySet[Any]:
    return queryset.order_by().values("wallet").annotate(total=Sum("amount")).values("total")


@pytest.mark.slow
@pytest.mark.django_db
def test_any_sequence_of_operations_keeps_ledger_totals_and_model_in_agreement():
    run_state_machine_as_test(
        LedgerMachine,
        # No shrink phase: every step is a few database round trips, and shrinking a
        # failure took minutes (past pytest-timeout). An unshrunk failing run of at
        # most 20 steps is still short enough to read.
        settings=settings(
            max_examples=50,
            stateful_step_count=20,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
