"""django-celery-beat's scheduler, plus a beat heartbeat on its tick."""

from __future__ import annotations

import logging
import time
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

from nanobanana.ops.services import BEAT, heartbeat_record

logger = logging.getLogger(__name__)
HEARTBEAT_EVERY_SECONDS = 15.0


class HeartbeatScheduler(DatabaseScheduler):
    _last_heartbeat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY_SECONDS:
            try:
                heartbeat_record(name=BEAT)
                self._last_heartbeat = now
            except Exception:
                logger.exception("beat heartbeat failed")
        return float(min(super().tick(*args, **kwargs), HEARTBEAT_EVERY_SECONDS))
