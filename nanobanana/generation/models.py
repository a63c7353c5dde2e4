from __future__ import annotations

from django.db import models


class RequestStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    PROCESSING = "processing", "processing"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


ACTIVE_STATUSES = (RequestStatus.QUEUED, RequestStatus.PROCESSING)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERED = "delivered", "delivered"
    LINKED = "linked", "delivered as a link"
    BLOCKED = "blocked", "user blocked the bot"
    FAILED = "failed", "failed"


def _claim_holder(claim: str) -> models.CharField[str, str]:
    """Who holds a claim (`nanobanana.core.process`); `db_default` lets the
    release before this column keep inserting rows."""
    return models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text=f"The process that took the {claim} claim (nanobanana.core.process); meaningful while it holds.",
    )


class GenerationRequest(models.Model):
    """One paid job. Every status change is a conditional UPDATE from the
    expected status, so task retries and races cannot apply it twice."""

    user = models.ForeignKey("accounts.TelegramUser", on_delete=models.PROTECT, related_name="generations")
    model = models.ForeignKey("catalog.AIModel", on_delete=models.PROTECT, related_name="requests")
    prompt = models.TextField()
    params = models.JSONField(default=dict)
    # Nullable so the column can be added while the previous release still runs.
    input_paths = models.JSONField(
        null=True, blank=True, default=list, help_text="Media paths of the user's reference images or frames, in order."
    )
    units = models.PositiveIntegerField()
    price = models.PositiveIntegerField(help_text="Tokens held at submit.")
    hold = models.OneToOneField("billing.Hold", on_delete=models.PROTECT, related_name="generation")
    idempotency_key = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.QUEUED)
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    provider_job_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.TextField(blank=True, help_text="For operators; never shown to users.")
    chat_id = models.BigIntegerField()
    status_message_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True, help_text="When the provider is asked next.")
    poll_claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A poll is asking the provider until then; others stay away."
    )
    poll_claimed_by = _claim_holder("poll")
    progress_shown_at = models.DateTimeField(
        null=True, blank=True, help_text="When the status message last showed the time waited."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    delivery_claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A delivery is sending the outcome until then; others stay away."
    )
    delivery_claimed_by = _claim_holder("delivery")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "deadline_at"], name="generation_status_deadline"),
            models.Index(fields=["user", "-created_at"], name="generation_user_recent"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=RequestStatus.values), name="generation_status_valid"),
            models.CheckConstraint(
                condition=models.Q(delivery_status__in=DeliveryStatus.values), name="generation_delivery_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(finished_at__isnull=True) | ~models.Q(status__in=ACTIVE_STATUSES),
                name="generation_finished_only_when_final",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_id} {self.status}"


class GenerationResult(models.Model):
    """One stored output file. `sent_at` lets a retried delivery skip what
    already reached the chat."""

    request = models.ForeignKey(GenerationRequest, on_delete=models.CASCADE, related_name="results")
    index = models.PositiveSmallIntegerField()
    path = models.CharField(max_length=512)
    content_type = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "index"]
        constraints = [models.UniqueConstraint(fields=["request", "index"], name="generation_result_unique_index")]

    def __str__(self) -> str:
        return f"{self.request_id}/{self.index}"
