from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Create an operator (admin console user). The password comes from OPERATOR_PASSWORD; "
        "without it a strong one is generated and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, username: str, email: str, **options: Any) -> None:
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            raise CommandError(f"operator {username!r} already exists")
        password = os.environ.get("OPERATOR_PASSWORD") or secrets.token_urlsafe(18)
        users.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(f"operator {username!r} created")
        if not os.environ.get("OPERATOR_PASSWORD"):
            self.stdout.write(f"password (shown once): {password}")
