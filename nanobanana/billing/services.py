"""Writes to wallets, the ledger and holds.

Every write runs in `transaction.atomic()` and takes the wallet's row lock
(`SELECT ... FOR UPDATE`) before touching anything else, so concurrent writers
to one wallet run one after another. Lock order: wallet, then hold, then the
new entry. On SQLite `select_for_update` is a no-op, and the database's single
writer lock gives the same serialisation.

Hold transitions are conditional UPDATEs (`WHERE status = 'held'`) whose row
count decides who won, so a retried task or a race cannot capture or release
twice. See docs/decisions/301-billing-ledger-and-holds.md.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from nanobanana.billing.models import (
    CREDIT_KINDS,
    HOLD_REFERENCE_MAX_LENGTH,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    EntryKind,
    Hold,
    HoldStatus,
    LedgerEntry,
    Wallet,
)
from nanobanana.core import clock
from nanobanana.core.errors import Conflict, InsufficientFunds, NotFound, ValidationError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from nanobanana.accounts.models import TelegramUser

__all__ = [
    "bonus_welcome_grant",
    "hold_capture",
    "hold_place",
    "hold_release",
    "wallet_adjust",
    "wallet_credit",
    "wallet_get_or_create",
]


def wallet_get_or_create(*, user: TelegramUser) -> Wallet:
    """Return the user's wallet, creating an empty one if needed. Safe under races."""
    wallet = Wallet.objects.filter(user=user).first()
    if wallet is not None:
        return wallet
    try:
        with transaction.atomic():
            return Wallet.objects.create(user=user)
    except IntegrityError:
        # Another writer created it between our read and our insert.
        return Wallet.objects.get(user=user)


def wallet_credit(
    *,
    user: TelegramUser,
    amount: int,
    kind: EntryKind,
    idempotency_key: str,
    reason: str = "",
) -> tuple[LedgerEntry, bool]:
    """Add `amount` tokens to the user's wallet as one ledger entry.

    Returns (entry, created). A replay of `idempotency_key` returns the entry
    written the first time and changes nothing, also when the replays race.
    Raises ValidationError for a non-positive amount or a kind that is not a
    credit (purchase, bonus, promo, refund), and Conflict when the key was
    already used for a different wallet, kind or amount (a caller bug that
    must not be hidden as a replay).
    """
    if kind not in CREDIT_KINDS:
        raise ValidationError(f"{kind!r} is not a credit kind")
    _require_positive(amount)
    _require_key(idempotency_key)
    wallet = wallet_get_or_create(user=user)

    existing = _entry_by_key(idempotency_key)
    if existing is not None:
        return _replayed(existing, wallet=wallet, kind=kind, amount=amount), False

    with transaction.atomic():
        wallet = _lock_wallet(wallet.pk)
        # Writers to this wallet queue on the lock; the one before us may have
        # committed this very key.
        existing = _entry_by_key(idempotency_key)
        if existing is not None:
            return _replayed(existing, wallet=wallet, kind=kind, amount=amount), False
        entry = _entry_insert(wallet=wallet, kind=kind, amount=amount, idempotency_key=idempotency_key, reason=reason)
        if entry is None:
            # The same key raced in through another wallet's lock.
            raced = _entry_by_key(idempotency_key)
            assert raced is not None
            return _replayed(raced, wallet=wallet, kind=kind, amount=amount), False
        _wallet_save(wallet, balance=wallet.balance + amount)
        return entry, True


def wallet_adjust(
    *,
    user: TelegramUser,
    amount: int,
    reason: str,
    operator: User | None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """An operator's signed correction of a balance, with a required reason.

    A debit may not take the available balance (balance - held) below zero:
    InsufficientFunds. Without `idempotency_key` every call is a new
    adjustment; with one, a replay returns the first entry unchanged.
    """
    if _not_whole(amount) or amount == 0:
        raise ValidationError("an adjustment needs a non-zero whole number of tokens")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("an adjustment needs a reason")
    key = idempotency_key if idempotency_key is not None else f"adjustment:{uuid.uuid4()}"
    _require_key(key)
    wallet = wallet_get_or_create(user=user)

    with transaction.atomic():
        wallet = _lock_wallet(wallet.pk)
        existing = _entry_by_key(key)
        if existing is not None:
            return _replayed(existing, wallet=wallet, kind=EntryKind.ADJUSTMENT, amount=amount)
        if amount < 0 and wallet.available + amount < 0:
            raise InsufficientFunds(required=-amount, available=wallet.available)
        entry = _entry_insert(
            wallet=wallet,
            kind=EntryKind.ADJUSTMENT,
            amount=amount,
            idempotency_key=key,
            reason=reason,
            operator=operator,
        )
        if entry is None:
            raced = _entry_by_key(key)
            assert raced is not None
            return _replayed(raced, wallet=wallet, kind=EntryKind.ADJUSTMENT, amount=amount)
        _wallet_save(wallet, balance=wallet.balance + amount)
        return entry


def hold_place(*, user: TelegramUser, amount: int, reference: str) -> Hold:
    """Reserve `amount` tokens for `reference` (e.g. "generation:123").

    Writes no ledger entry: it raises the wallet's `held`. Raises
    InsufficientFunds(required, available) when the available balance is
    short. Idempotent by reference: placing again returns the existing hold
    (whatever its status) and reserves nothing more; a reference reused for
    another wallet or amount is a Conflict.
    """
    _require_positive(amount)
    if not reference or len(reference) > HOLD_REFERENCE_MAX_LENGTH:
        raise ValidationError(f"a hold reference is 1..{HOLD_REFERENCE_MAX_LENGTH} characters")
    wallet = wallet_get_or_create(user=user)

    existing = Hold.objects.filter(reference=reference).first()
    if existing is not None:
        return _same_hold(existing, wallet=wallet, amount=amount)

    with transaction.atomic():
        wallet = _lock_wallet(wallet.pk)
        existing = Hold.objects.filter(reference=reference).first()
        if existing is not None:
            return _same_hold(existing, wallet=wallet, amount=amount)
        if wallet.available < amount:
            raise InsufficientFunds(required=amount, available=wallet.available)
        try:
            with transaction.atomic():
                hold = Hold.objects.create(wallet=wallet, amount=amount, reference=reference)
        except IntegrityError:
            raced = Hold.objects.filter(reference=reference).first()
            if raced is None:
                raise
            return _same_hold(raced, wallet=wallet, amount=amount)
        _wallet_save(wallet, held=wallet.held + amount)
        return hold


def hold_capture(*, hold_id: int, amount: int | None = None) -> Hold:
    """Charge a hold: `amount` tokens (all of it when None), freeing the rest.

    Writes one `capture` entry of -amount and lowers both balance and held.
    Capturing a captured hold again is a no-op that returns it; capturing a
    released hold raises Conflict. ValidationError unless 0 < amount <= hold.amount.
    """
    hold = _hold_get(hold_id)
    if amount is not None and (_not_whole(amount) or not 0 < amount <= hold.amount):
        raise ValidationError(f"a capture is 1..{hold.amount} tokens, got {amount!r}")
    captured = hold.amount if amount is None else amount
    resolved_at = clock.now()
    with _hold_move():
        wallet = _hold_take(hold, status=HoldStatus.CAPTURED, captured_amount=captured, resolved_at=resolved_at)
        if wallet is not None:
            hold.status, hold.captured_amount, hold.resolved_at = HoldStatus.CAPTURED, captured, resolved_at
            _entry_insert(  # only the update that moved the hold gets here: the key is new
                wallet=wallet,
                kind=EntryKind.CAPTURE,
                amount=-captured,
                idempotency_key=f"capture:hold:{hold.pk}",
                reason=hold.reference,
                hold=hold,
                fresh=True,
            )
            _wallet_save(wallet, balance=wallet.balance - captured, held=wallet.held - hold.amount)
    return hold if wallet is not None else _hold_moved_before(hold, HoldStatus.CAPTURED)


def hold_release(*, hold_id: int) -> Hold:
    """Give a hold's tokens back to the available balance; no ledger entry.

    Releasing a released hold again is a no-op; releasing a captured hold
    raises Conflict.
    """
    hold = _hold_get(hold_id)
    resolved_at = clock.now()
    with _hold_move():
        wallet = _hold_take(hold, status=HoldStatus.RELEASED, resolved_at=resolved_at)
        if wallet is not None:
            hold.status, hold.resolved_at = HoldStatus.RELEASED, resolved_at
            _wallet_save(wallet, held=wallet.held - hold.amount)
    return hold if wallet is not None else _hold_moved_before(hold, HoldStatus.RELEASED)


def bonus_welcome_grant(*, user: TelegramUser) -> bool:
    """Credit the welcome bonus once per Telegram account, ever.

    True only when this call granted it; False when it was granted before
    or the bonus is configured as zero.
    """
    tokens: int = settings.WELCOME_BONUS_TOKENS
    if tokens <= 0:
        return False
    _, created = wallet_credit(
        user=user,
        amount=tokens,
        kind=EntryKind.BONUS,
        idempotency_key=f"welcome:{user.telegram_id}",
        reason="welcome bonus",
    )
    return created


# --- helpers ----------------------------------------------------------------


def _not_whole(amount: object) -> bool:
    # bool is an int subclass; True tokens is a bug, not one token.
    return isinstance(amount, bool) or not isinstance(amount, int)


def _require_positive(amount: int) -> None:
    if _not_whole(amount) or amount <= 0:
        raise ValidationError(f"amount must be a positive whole number of tokens, got {amount!r}")


def _require_key(key: str) -> None:
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError(f"an idempotency key is 1..{IDEMPOTENCY_KEY_MAX_LENGTH} characters")


def _hold_move() -> transaction.Atomic:
    """The transaction a hold moves in: inside a caller's, no savepoint of
    its own (two round trips less per completed generation). Nothing in it
    raises but a database error, which aborts the caller's transaction
    anyway; the Conflict of a hold that moved before is raised after it."""
    return transaction.atomic(savepoint=False)


def _hold_take(hold: Hold, **changes: Any) -> Wallet | None:
    """Inside `_hold_move()`: lock the hold's wallet and move the hold out of
    held (a conditional update, so only one caller ever does); the locked
    wallet when this call moved it, None when it had moved before."""
    wallet = _lock_wallet(hold.wallet_id)
    return wallet if Hold.objects.filter(pk=hold.pk, status=HoldStatus.HELD).update(**changes) else None


def _hold_moved_before(hold: Hold, status: HoldStatus) -> Hold:
    """A hold found already moved: moved the same way, the call is a replay
    and returns it; moved the other way, Conflict."""
    hold.refresh_from_db()
    if hold.status != status:
        raise Conflict(f"hold {hold.reference} was already {hold.status}")
    return hold


def _lock_wallet(wallet_id: int) -> Wallet:
    return Wallet.objects.select_for_update().get(pk=wallet_id)


def _hold_get(hold_id: int) -> Hold:
    hold = Hold.objects.filter(pk=hold_id).first()
    if hold is None:
        raise NotFound(f"hold {hold_id} does not exist")
    return hold


def _entry_by_key(key: str) -> LedgerEntry | None:
    return LedgerEntry.objects.filter(idempotency_key=key).first()


def _replayed(entry: LedgerEntry, *, wallet: Wallet, kind: str, amount: int) -> LedgerEntry:
    if entry.wallet_id != wallet.pk or entry.kind != kind or entry.amount != amount:
        raise Conflict(f"idempotency key {entry.idempotency_key!r} was used for a different operation")
    return entry


def _same_hold(hold: Hold, *, wallet: Wallet, amount: int) -> Hold:
    if hold.wallet_id != wallet.pk or hold.amount != amount:
        raise Conflict(f"hold reference {hold.reference!r} is already used for a different hold")
    return hold


def _entry_insert(
    *,
    wallet: Wallet,
    kind: EntryKind,
    amount: int,
    idempotency_key: str,
    reason: str = "",
    hold: Hold | None = None,
    operator: User | None = None,
    fresh: bool = False,
) -> LedgerEntry | None:
    """Insert one entry against a locked wallet; None when the key already
    exists (a replay), in a savepoint so the caller's transaction goes on.
    `fresh`: the caller knows the key is new, so no savepoint (a duplicate
    would be a bug, and its IntegrityError undoes the caller's work)."""
    entry = LedgerEntry(
        wallet=wallet,
        kind=kind,
        amount=amount,
        balance_after=wallet.balance + amount,
        idempotency_key=idempotency_key,
        reason=reason,
        hold=hold,
        operator=operator,
    )
    if fresh:
        entry.save(force_insert=True)
        return entry
    try:
        with transaction.atomic():
            entry.save(force_insert=True)
    except IntegrityError:
        if _entry_by_key(idempotency_key) is None:
            raise  # some other constraint: a real bug, not a replay
        return None
    return entry


def _wallet_save(wallet: Wallet, *, balance: int | None = None, held: int | None = None) -> None:
    """Write the cached totals of a wallet locked by this transaction."""
    fields = ["updated_at"]
    if balance is not None:
        wallet.balance = balance
        fields.append("balance")
    if held is not None:
        wallet.held = held
        fields.append("held")
    wallet.save(update_fields=fields)
