from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from nanobanana.catalog.services import catalog_seed
from nanobanana.ops.schedules import schedules_sync


class Command(BaseCommand):
    help = "Load the model catalog and write the periodic schedules (idempotent; run on every release)."

    def handle(self, *args: Any, **options: Any) -> None:
        created, updated = catalog_seed()
        names = schedules_sync()
        self.stdout.write(f"catalog: {created} created, {updated} updated; schedules: {', '.join(names)}")
