from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from nanobanana.catalog.services import catalog_seed
from nanobanana.ops.schedules import schedules_sync
from nanobanana.payments.packages import packages_seed


class Command(BaseCommand):
    help = "Load the model catalog and token packages, write the periodic schedules (idempotent; every release)."

    def handle(self, *args: Any, **options: Any) -> None:
        created, updated = catalog_seed()
        packages = packages_seed()
        names = schedules_sync()
        self.stdout.write(
            f"catalog: {created} created, {updated} updated; token packages: {packages} created; "
            f"schedules: {', '.join(names)}"
        )
