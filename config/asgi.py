"""The web process: Django, plus the Telegram sandbox under /sandbox when no
real bot token is configured (development only; production refuses to start
without a token)."""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()


def _with_sandbox(django_app: Any) -> Any:
    from django.conf import settings
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from nanobanana.sandbox import FakeTelegram, create_app

    fake = FakeTelegram(
        token=settings.TELEGRAM_BOT_TOKEN,
        webhook_url=f"http://127.0.0.1:{settings.PORT}{settings.TELEGRAM_WEBHOOK_PATH}",
        webhook_secret=settings.TG_WEBHOOK_SECRET,
        auto_create_chats=True,
        # The inbox remembers update ids across restarts (they are its primary
        # key); a sandbox counting from the same number again would have its
        # first updates taken for redeliveries and dropped. Milliseconds since
        # the epoch keep every run ahead of the last one.
        first_update_id=int(time.time() * 1000),
    )
    sandbox = create_app(fake)
    return Starlette(
        routes=[Mount("/sandbox", app=sandbox), Mount("/", app=django_app)],
        lifespan=sandbox.router.lifespan_context,
    )


def _build() -> Any:
    from django.conf import settings

    from nanobanana.bot.webhook_asgi import with_webhook

    app = _with_sandbox(django_application) if settings.SANDBOX_ENABLED else django_application
    return with_webhook(
        app,
        threads=settings.WEBHOOK_THREADS,
        batch_max_size=settings.WEBHOOK_BATCH_MAX_SIZE,
        batch_max_wait=settings.WEBHOOK_BATCH_MAX_WAIT_MS / 1000,
    )


application = _build()
