from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from nanobanana.bot.dispatcher import used_update_types


class Command(BaseCommand):
    help = "Print, as a JSON list, the update types the bot handles (setWebhook's allowed_updates)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(used_update_types()))
