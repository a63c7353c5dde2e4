"""Check that the cached wallet totals and the hold states agree with the ledger.

The database constraints stop most corruption at write time; this catches
what they cannot express across rows (a cached balance that drifted from its
entries, a hold whose capture entry is missing or doubled) and anything
written around the services, e.g. by hand in a SQL console.
"""

from __future__ import annotations

from django.db.models import BigIntegerField, Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from nanobanana.billing.models import EntryKind, Hold, HoldStatus, LedgerEntry, Wallet


def reconcile() -> list[str]:
    """Return every inconsistency found in the billing tables; empty means clean."""
    wallets = _wallets_with_totals()
    holds = Hold.objects.annotate(
        capture_entries=Count("entries", filter=Q(entries__kind=EntryKind.CAPTURE)),
        captured_sum=Coalesce(Sum("entries__amount", filter=Q(entries__kind=EntryKind.CAPTURE)), Value(0)),
    )
    totals = ("pk", "user_id", "balance", "held", "entries_sum", "last_balance_after", "active_holds_sum")
    problems = [
        f"wallet {w['pk']} (user {w['user_id']}): balance {w['balance']} != sum of entries {w['entries_sum']}"
        for w in wallets.exclude(balance=F("entries_sum")).values(*totals)
    ]
    problems += [
        f"wallet {w['pk']} (user {w['user_id']}): balance {w['balance']} != balance_after of its latest entry "
        f"{w['last_balance_after']}"
        for w in wallets.filter(Q(last_balance_after__isnull=False) & ~Q(balance=F("last_balance_after"))).values(
            *totals
        )
    ]
    problems += [
        f"wallet {w['pk']} (user {w['user_id']}): held {w['held']} != sum of active holds {w['active_holds_sum']}"
        for w in wallets.exclude(held=F("active_holds_sum")).values(*totals)
    ]
    problems += [
        f"wallet {w.pk} (user {w.user_id}): negative value (balance {w.balance}, held {w.held}, "
        f"available {w.available})"
        for w in Wallet.objects.filter(Q(balance__lt=0) | Q(held__lt=0) | Q(balance__lt=F("held")))
    ]
    problems += [
        f"entry {e.pk}: negative balance_after {e.balance_after}"
        for e in LedgerEntry.objects.filter(balance_after__lt=0)
    ]
    problems += [
        f"hold {h.pk} ({h.reference}): has a capture entry but status is {h.status}"
        for h in holds.filter(capture_entries__gt=0).exclude(status=HoldStatus.CAPTURED)
    ]
    problems += [
        f"hold {h.pk} ({h.reference}): captured with {h.capture_entries} capture entries, expected 1"
        for h in holds.filter(status=HoldStatus.CAPTURED).exclude(capture_entries=1)
    ]
    problems += [
        f"hold {h.pk} ({h.reference}): captured_amount {h.captured_amount} != capture entry {-h.captured_sum}"
        for h in holds.filter(status=HoldStatus.CAPTURED, capture_entries=1).exclude(captured_sum=-F("captured_amount"))
    ]
    problems += [
        f"hold {h.pk} ({h.reference}): negative value (amount {h.amount}, captured {h.captured_amount})"
        for h in Hold.objects.filter(Q(amount__lte=0) | Q(captured_amount__lt=0))
    ]
    problems += [
        f"entry {e['pk']}: belongs to wallet {e['wallet_id']} but its hold {e['hold_id']} to another wallet"
        for e in LedgerEntry.objects.filter(hold__isnull=False)
        .exclude(hold__wallet_id=F("wallet_id"))
        .values("pk", "wallet_id", "hold_id")
    ]
    return problems


def _wallets_with_totals() -> QuerySet[Wallet]:
    # Subqueries, not joins: joining entries and holds at once would multiply rows.
    entries = LedgerEntry.objects.filter(wallet=OuterRef("pk"))
    entries_sum = entries.order_by().values("wallet").annotate(total=Sum("amount")).values("total")
    last_balance_after = entries.order_by("-id").values("balance_after")[:1]
    active_holds_sum = (
        Hold.objects.filter(wallet=OuterRef("pk"), status=HoldStatus.HELD)
        .order_by()
        .values("wallet")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    big: BigIntegerField[int, int] = BigIntegerField()
    return Wallet.objects.annotate(
        entries_sum=Coalesce(Subquery(entries_sum, output_field=big), Value(0), output_field=big),
        last_balance_after=Subquery(last_balance_after, output_field=big),
        active_holds_sum=Coalesce(Subquery(active_holds_sum, output_field=big), Value(0), output_field=big),
    ).order_by("pk")
