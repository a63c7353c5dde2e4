"""`manage.py billing_reconcile`: check the ledger against the cached totals."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from nanobanana.billing.reconciliation import reconcile
from nanobanana.billing.selectors import ledger_counts


class Command(BaseCommand):
    help = "Check wallet balances and holds against the ledger; exit 1 and list every problem found."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = reconcile()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"ledger has {len(problems)} problem(s)", returncode=1)
        counts = ledger_counts()
        self.stdout.write(f"ledger OK: {counts.wallets} wallets, {counts.entries} entries, {counts.holds} holds")
