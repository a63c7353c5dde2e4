from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of a background process (worker, beat)."""

    name = models.CharField(max_length=32, unique=True)
    beat_at = models.DateTimeField()
    detail = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
