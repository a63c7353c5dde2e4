"""Payments against the ledger: what `billing.reconciliation` cannot see."""

from __future__ import annotations

from nanobanana.billing.models import EntryKind, HoldStatus, LedgerEntry
from nanobanana.payments.models import Payment, PaymentStatus

CREDITED = (PaymentStatus.PAID, PaymentStatus.REFUNDING, PaymentStatus.REFUNDED)


def payments_reconcile() -> list[str]:
    """Every paid payment has its one purchase entry of the right size in the
    payer's wallet, nothing unpaid has one, and every refunded payment's hold
    was captured in full. Empty means clean."""
    entries = {
        entry.idempotency_key: entry
        for entry in LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, idempotency_key__startswith="payment:")
        .select_related("wallet")
        .only("idempotency_key", "amount", "wallet__user_id")
    }
    problems: list[str] = []
    for payment in Payment.objects.select_related("refund_hold").order_by("pk"):
        entry = entries.pop(payment.ledger_key, None)
        if payment.status in CREDITED:
            if entry is None:
                problems.append(f"payment {payment.pk} ({payment.ledger_key}) is {payment.status} but has no entry")
            elif entry.amount != payment.tokens or entry.wallet.user_id != payment.user_id:
                problems.append(
                    f"payment {payment.pk}: its entry credits {entry.amount} to user {entry.wallet.user_id}"
                )
        elif entry is not None:
            problems.append(f"payment {payment.pk} is {payment.status} but its entry credited {entry.amount}")
        hold = payment.refund_hold
        if payment.status == PaymentStatus.REFUNDED and (
            hold is None or hold.status != HoldStatus.CAPTURED or hold.captured_amount != payment.tokens
        ):
            problems.append(f"payment {payment.pk} is refunded but its tokens were not taken back in full")
    problems += [f"entry {key} credits a payment that does not exist" for key in entries]
    return problems
