"""django-celery-beat's scheduler, plus a beat heartbeat on its tick, and
a tick that survives the database going away for a while."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import DatabaseError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler

from nanobanana.ops.services import BEAT, heartbeat_record

logger = logging.getLogger(__name__)
HEARTBEAT_EVERY_SECONDS = 15.0
# A tick that could not read the schedule is tried again this much later.
DATABASE_RETRY_SECONDS = 5.0


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
        try:
            interval = super().tick(*args, **kwargs)
        except DatabaseError:
            # django-celery-beat reads the schedule from the database when it
            # may have changed, and lets a connection error out of the tick:
            # beat exited on a database outage of a few seconds (fault suite).
            # This tick is skipped and a broken connection dropped; the next
            # one connects again and goes on with the schedule it has (read
            # again at the next change or five-minute re-read).
            logger.warning("beat could not read its schedule from the database; retrying", exc_info=True)
            close_old_connections()
            if self._schedule is None:  # the first read failed: the next tick reads it whole again
                self._initial_read = True
            return DATABASE_RETRY_SECONDS
        return float(min(interval, HEARTBEAT_EVERY_SECONDS))
