from __future__ import annotations

from django.db import models


class InboxStatus(models.TextChoices):
    PENDING = "pending", "pending"
    PROCESSING = "processing", "processing"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class InboxUpdate(models.Model):
    """A Telegram update, stored before the webhook answers 200.

    `update_id` is the primary key, so a redelivered update is stored once;
    the status moves by conditional updates, so it is handled once."""

    update_id = models.BigIntegerField(primary_key=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=InboxStatus.choices, default=InboxStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "received_at"], name="inbox_status_received")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=InboxStatus.values), name="inbox_status_valid")
        ]

    def __str__(self) -> str:
        return f"update {self.update_id} ({self.status})"


class FsmRecord(models.Model):
    """aiogram FSM state and data for one chat/user, when Redis is absent."""

    key = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key
