import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from nanobanana.billing.models import EntryKind, Hold, HoldStatus, LedgerEntry, Wallet
from nanobanana.billing.services import (
    bonus_welcome_grant,
    hold_capture,
    hold_place,
    hold_release,
    wallet_adjust,
    wallet_credit,
    wallet_get_or_create,
)
from nanobanana.core.errors import Conflict, InsufficientFunds, NotFound, ValidationError

pytestmark = pytest.mark.django_db


def entries_sum(wallet):
    return LedgerEntry.objects.filter(wallet=wallet).aggregate(total=Sum("amount"))["total"] or 0


# --- wallet_get_or_create ---------------------------------------------------


def test_wallet_get_or_create_creates_an_empty_wallet_once(user):
    first = wallet_get_or_create(user=user)
    second = wallet_get_or_create(user=user)
    assert first.pk == second.pk
    assert (first.balance, first.held, first.available) == (0, 0, 0)
    assert Wallet.objects.filter(user=user).count() == 1


# --- wallet_credit ----------------------------------------------------------


def test_credit_adds_to_balance_and_writes_one_entry(user, wallet_of):
    entry, created = wallet_credit(
        user=user, amount=70, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-1", reason="70 tokens pack"
    )
    assert created
    assert (entry.kind, entry.amount, entry.balance_after, entry.reason) == (
        EntryKind.PURCHASE,
        70,
        70,
        "70 tokens pack",
    )
    wallet = wallet_of(user)
    assert wallet.balance == 70
    assert wallet.held == 0
    assert entries_sum(wallet) == 70


def test_credit_balance_after_follows_the_running_balance(user):
    wallet_credit(user=user, amount=10, kind=EntryKind.PURCHASE, idempotency_key="k1")
    second, _ = wallet_credit(user=user, amount=5, kind=EntryKind.PROMO, idempotency_key="k2")
    assert second.balance_after == 15


def test_credit_replay_returns_the_first_entry_and_changes_nothing(user, wallet_of):
    first, _ = wallet_credit(user=user, amount=30, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-2")
    replay, created = wallet_credit(user=user, amount=30, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-2")
    assert not created
    assert replay.pk == first.pk
    assert wallet_of(user).balance == 30
    assert LedgerEntry.objects.filter(idempotency_key="stars:charge-2").count() == 1


def test_credit_key_reused_for_a_different_amount_is_a_conflict(user, wallet_of):
    wallet_credit(user=user, amount=30, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-3")
    with pytest.raises(Conflict):
        wallet_credit(user=user, amount=31, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-3")
    assert wallet_of(user).balance == 30


def test_credit_key_reused_for_another_user_is_a_conflict(user_factory, wallet_of):
    first, second = user_factory(), user_factory()
    wallet_credit(user=first, amount=30, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-4")
    with pytest.raises(Conflict):
        wallet_credit(user=second, amount=30, kind=EntryKind.PURCHASE, idempotency_key="stars:charge-4")
    assert wallet_of(second).balance == 0


@pytest.mark.parametrize("amount", [0, -5, True, 1.5])
def test_credit_refuses_amounts_that_are_not_positive_whole_numbers(user, amount):
    with pytest.raises(ValidationError):
        wallet_credit(user=user, amount=amount, kind=EntryKind.PURCHASE, idempotency_key="bad")
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("kind", [EntryKind.CAPTURE, EntryKind.ADJUSTMENT, "gift"])
def test_credit_refuses_kinds_that_are_not_credits(user, kind):
    with pytest.raises(ValidationError):
        wallet_credit(user=user, amount=5, kind=kind, idempotency_key="bad-kind")
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 201])
def test_credit_refuses_empty_or_oversized_idempotency_keys(user, key):
    with pytest.raises(ValidationError):
        wallet_credit(user=user, amount=5, kind=EntryKind.PURCHASE, idempotency_key=key)


@pytest.mark.parametrize("kind", [EntryKind.PURCHASE, EntryKind.BONUS, EntryKind.PROMO, EntryKind.REFUND])
def test_every_credit_kind_is_accepted(user, kind):
    entry, created = wallet_credit(user=user, amount=3, kind=kind, idempotency_key=f"kind:{kind}")
    assert created
    assert entry.kind == kind


# --- wallet_adjust ----------------------------------------------------------


def test_adjust_records_reason_and_operator(user, operator, wallet_of):
    entry = wallet_adjust(user=user, amount=25, reason="  support ticket 17  ", operator=operator)
    assert entry.kind == EntryKind.ADJUSTMENT
    assert entry.reason == "support ticket 17"
    assert entry.operator == operator
    assert wallet_of(user).balance == 25


def test_adjust_can_debit_within_the_available_balance(funded_user, operator, wallet_of):
    entry = wallet_adjust(user=funded_user, amount=-40, reason="chargeback", operator=operator)
    assert entry.amount == -40
    assert entry.balance_after == 60
    assert wallet_of(funded_user).balance == 60


def test_adjust_debit_may_not_eat_into_held_tokens(funded_user, operator, wallet_of):
    hold_place(user=funded_user, amount=70, reference="generation:1")
    with pytest.raises(InsufficientFunds) as error:
        wallet_adjust(user=funded_user, amount=-31, reason="chargeback", operator=operator)
    assert (error.value.required, error.value.available) == (31, 30)
    assert wallet_of(funded_user).balance == 100
    wallet_adjust(user=funded_user, amount=-30, reason="chargeback", operator=operator)
    assert wallet_of(funded_user).available == 0


@pytest.mark.parametrize("reason", ["", "   "])
def test_adjust_refuses_a_blank_reason(funded_user, operator, reason, wallet_of):
    with pytest.raises(ValidationError):
        wallet_adjust(user=funded_user, amount=5, reason=reason, operator=operator)
    assert wallet_of(funded_user).balance == 100


def test_adjust_refuses_zero(funded_user, operator):
    with pytest.raises(ValidationError):
        wallet_adjust(user=funded_user, amount=0, reason="nothing", operator=operator)


def test_adjust_with_a_key_is_idempotent(funded_user, operator, wallet_of):
    first = wallet_adjust(user=funded_user, amount=-10, reason="fix", operator=operator, idempotency_key="adj:1")
    again = wallet_adjust(user=funded_user, amount=-10, reason="fix", operator=operator, idempotency_key="adj:1")
    assert again.pk == first.pk
    assert wallet_of(funded_user).balance == 90


def test_adjust_without_a_key_adds_a_new_entry_each_time(funded_user, operator, wallet_of):
    wallet_adjust(user=funded_user, amount=5, reason="goodwill", operator=operator)
    wallet_adjust(user=funded_user, amount=5, reason="goodwill", operator=operator)
    assert wallet_of(funded_user).balance == 110
    assert LedgerEntry.objects.filter(kind=EntryKind.ADJUSTMENT).count() == 2


# --- hold_place -------------------------------------------------------------


def test_hold_raises_held_without_touching_balance_or_ledger(funded_user, wallet_of):
    entries_before = LedgerEntry.objects.count()
    hold = hold_place(user=funded_user, amount=40, reference="generation:10")
    assert hold.status == HoldStatus.HELD
    assert hold.resolved_at is None
    wallet = wallet_of(funded_user)
    assert (wallet.balance, wallet.held, wallet.available) == (100, 40, 60)
    assert LedgerEntry.objects.count() == entries_before


def test_hold_beyond_available_raises_insufficient_funds_and_places_nothing(funded_user, wallet_of):
    hold_place(user=funded_user, amount=80, reference="generation:11")
    with pytest.raises(InsufficientFunds) as error:
        hold_place(user=funded_user, amount=21, reference="generation:12")
    assert (error.value.required, error.value.available) == (21, 20)
    assert not Hold.objects.filter(reference="generation:12").exists()
    assert wallet_of(funded_user).held == 80


def test_hold_may_take_exactly_the_available_balance(funded_user, wallet_of):
    hold_place(user=funded_user, amount=100, reference="generation:13")
    assert wallet_of(funded_user).available == 0


def test_hold_for_a_user_without_wallet_is_insufficient(user):
    with pytest.raises(InsufficientFunds) as error:
        hold_place(user=user, amount=1, reference="generation:14")
    assert error.value.available == 0


def test_hold_with_the_same_reference_returns_the_existing_hold(funded_user, wallet_of):
    first = hold_place(user=funded_user, amount=30, reference="generation:15")
    again = hold_place(user=funded_user, amount=30, reference="generation:15")
    assert again.pk == first.pk
    assert wallet_of(funded_user).held == 30
    assert Hold.objects.count() == 1


def test_hold_replay_after_capture_places_nothing_new(funded_user, wallet_of):
    first = hold_place(user=funded_user, amount=30, reference="generation:16")
    hold_capture(hold_id=first.pk)
    again = hold_place(user=funded_user, amount=30, reference="generation:16")
    assert again.pk == first.pk
    assert again.status == HoldStatus.CAPTURED
    wallet = wallet_of(funded_user)
    assert (wallet.balance, wallet.held) == (70, 0)


def test_hold_reference_reused_for_a_different_amount_is_a_conflict(funded_user):
    hold_place(user=funded_user, amount=30, reference="generation:17")
    with pytest.raises(Conflict):
        hold_place(user=funded_user, amount=31, reference="generation:17")


@pytest.mark.parametrize(("amount", "reference"), [(0, "generation:18"), (-1, "generation:18"), (5, "")])
def test_hold_refuses_bad_input(funded_user, amount, reference):
    with pytest.raises(ValidationError):
        hold_place(user=funded_user, amount=amount, reference=reference)
    assert not Hold.objects.exists()


# --- hold_capture -----------------------------------------------------------


def test_full_capture_writes_one_negative_entry_and_frees_the_hold(funded_user, wallet_of):
    hold = hold_place(user=funded_user, amount=40, reference="generation:20")
    captured = hold_capture(hold_id=hold.pk)
    assert captured.status == HoldStatus.CAPTURED
    assert captured.captured_amount == 40
    assert captured.resolved_at is not None
    entry = LedgerEntry.objects.get(hold=hold)
    assert (entry.kind, entry.amount, entry.balance_after) == (EntryKind.CAPTURE, -40, 60)
    wallet = wallet_of(funded_user)
    assert (wallet.balance, wallet.held, wallet.available) == (60, 0, 60)
    assert entries_sum(wallet) == 60


def test_partial_capture_charges_only_what_was_delivered(funded_user, wallet_of):
    """4 images held, 2 delivered: 2 images are charged, the other 2 freed."""
    hold = hold_place(user=funded_user, amount=40, reference="generation:21")
    captured = hold_capture(hold_id=hold.pk, amount=20)
    assert captured.captured_amount == 20
    assert LedgerEntry.objects.get(hold=hold).amount == -20
    wallet = wallet_of(funded_user)
    assert (wallet.balance, wallet.held, wallet.available) == (80, 0, 80)


def test_second_capture_is_a_harmless_no_op(funded_user, wallet_of):
    hold = hold_place(user=funded_user, amount=40, reference="generation:22")
    hold_capture(hold_id=hold.pk, amount=30)
    again = hold_capture(hold_id=hold.pk)
    assert again.status == HoldStatus.CAPTURED
    assert again.captured_amount == 30
    assert LedgerEntry.objects.filter(hold=hold).count() == 1
    assert wallet_of(funded_user).balance == 70


def test_capture_after_release_is_a_conflict(funded_user, wallet_of):
    hold = hold_place(user=funded_user, amount=40, reference="generation:23")
    hold_release(hold_id=hold.pk)
    with pytest.raises(Conflict):
        hold_capture(hold_id=hold.pk)
    assert not LedgerEntry.objects.filter(hold=hold).exists()
    wallet = wallet_of(funded_user)
    assert (wallet.balance, wallet.held) == (100, 0)


@pytest.mark.parametrize("amount", [0, -1, 41, True])
def test_capture_amount_must_be_within_the_hold(funded_user, amount):
    hold = hold_place(user=funded_user, amount=40, reference="generation:24")
    with pytest.raises(ValidationError):
        hold_capture(hold_id=hold.pk, amount=amount)
    hold.refresh_from_db()
    assert hold.status == HoldStatus.HELD


def test_capture_of_an_unknown_hold_is_not_found(db):
    with pytest.raises(NotFound):
        hold_capture(hold_id=987654321)


def test_hold_moves_take_no_savepoint_inside_a_callers_transaction(funded_user):
    captured = hold_place(user=funded_user, amount=40, reference="generation:25")
    released = hold_place(user=funded_user, amount=10, reference="generation:26")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        hold_capture(hold_id=captured.pk, amount=30)
        hold_release(hold_id=released.pk)
    statements = [query["sql"].split()[0].upper() for query in queries]
    assert "SAVEPOINT" not in statements
    assert statements.count("INSERT") == 1  # the capture entry, and nothing else


def test_a_conflict_from_a_hold_move_leaves_the_callers_transaction_usable(funded_user, wallet_of):
    hold = hold_place(user=funded_user, amount=40, reference="generation:27")
    hold_capture(hold_id=hold.pk)
    with transaction.atomic():
        with pytest.raises(Conflict):
            hold_release(hold_id=hold.pk)
        assert wallet_of(funded_user).balance == 60  # a query after the Conflict still runs


# --- hold_release -----------------------------------------------------------


def test_release_lowers_held_only_and_writes_no_entry(funded_user, wallet_of):
    hold = hold_place(user=funded_user, amount=40, reference="generation:30")
    entries_before = LedgerEntry.objects.count()
    released = hold_release(hold_id=hold.pk)
    assert released.status == HoldStatus.RELEASED
    assert released.captured_amount == 0
    assert released.resolved_at is not None
    wallet = wallet_of(funded_user)
    assert (wallet.balance, wallet.held) == (100, 0)
    assert LedgerEntry.objects.count() == entries_before


def test_second_release_is_a_harmless_no_op(funded_user, wallet_of):
    other = hold_place(user=funded_user, amount=10, reference="generation:31")
    hold = hold_place(user=funded_user, amount=40, reference="generation:32")
    hold_release(hold_id=hold.pk)
    hold_release(hold_id=hold.pk)
    assert wallet_of(funded_user).held == other.amount


def test_release_after_capture_is_a_conflict(funded_user, wallet_of):
    hold = hold_place(user=funded_user, amount=40, reference="generation:33")
    hold_capture(hold_id=hold.pk)
    with pytest.raises(Conflict):
        hold_release(hold_id=hold.pk)
    wallet = wallet_of(funded_user)
    assert (wallet.balance, wallet.held) == (60, 0)


def test_release_of_an_unknown_hold_is_not_found(db):
    with pytest.raises(NotFound):
        hold_release(hold_id=987654321)


# --- bonus_welcome_grant ----------------------------------------------------


def test_welcome_bonus_is_granted_once(user, settings, wallet_of):
    settings.WELCOME_BONUS_TOKENS = 30
    assert bonus_welcome_grant(user=user) is True
    assert bonus_welcome_grant(user=user) is False
    assert wallet_of(user).balance == 30
    entry = LedgerEntry.objects.get(wallet__user=user)
    assert (entry.kind, entry.idempotency_key) == (EntryKind.BONUS, f"welcome:{user.telegram_id}")


def test_welcome_bonus_of_zero_grants_nothing(user, settings):
    settings.WELCOME_BONUS_TOKENS = 0
    assert bonus_welcome_grant(user=user) is False
    assert not LedgerEntry.objects.exists()


# --- database constraints (the last line of defence) ------------------------


def test_database_refuses_a_negative_balance(funded_user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(user=funded_user).update(balance=-1)


def test_database_refuses_held_above_balance(funded_user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(user=funded_user).update(held=101)


def test_database_refuses_an_adjustment_without_reason(funded_user):
    wallet = Wallet.objects.get(user=funded_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet=wallet, kind=EntryKind.ADJUSTMENT, amount=5, balance_after=105, idempotency_key="raw", reason="  "
        )


def test_database_refuses_a_second_capture_entry_for_a_hold(funded_user):
    hold = hold_place(user=funded_user, amount=40, reference="generation:40")
    hold_capture(hold_id=hold.pk, amount=10)
    wallet = Wallet.objects.get(user=funded_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet=wallet, kind=EntryKind.CAPTURE, amount=-10, balance_after=80, idempotency_key="dup", hold=hold
        )


def test_database_refuses_a_resolved_hold_without_resolution_time(funded_user):
    hold = hold_place(user=funded_user, amount=40, reference="generation:41")
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.filter(pk=hold.pk).update(status=HoldStatus.RELEASED)


def test_database_refuses_an_unknown_hold_status(funded_user):
    hold = hold_place(user=funded_user, amount=40, reference="generation:42")
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.filter(pk=hold.pk).update(status="lost")


def test_ledger_entries_cannot_be_edited_or_deleted_through_the_model(funded_user):
    entry = LedgerEntry.objects.get(wallet__user=funded_user)
    entry.amount = 1_000_000
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    entry.refresh_from_db()
    assert entry.amount == 100
