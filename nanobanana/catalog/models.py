from __future__ import annotations

from django.db import models


class ModelKind(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"


class PriceUnit(models.TextChoices):
    """What one `price_per_unit` buys: the price is per unit times units."""

    IMAGE = "image", "per image"
    SECOND = "second", "per second of video"
    GENERATION = "generation", "per generation"


class AIModel(models.Model):
    """A model users can pick, with its parameters and price.

    `parameters` is a list of parameter specs: `{"name", "type": "choice",
    "choices": [...], "default", "units": bool}`. The one spec with
    `units: true` (count of images, seconds of video) multiplies the price."""

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=64)
    description_ru = models.CharField(max_length=255, blank=True)
    description_en = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=8, choices=ModelKind.choices)
    provider = models.CharField(max_length=32, help_text="Provider name in the registry, e.g. local, gemini.")
    provider_model = models.CharField(max_length=128, help_text="The vendor's own model id.")
    parameters = models.JSONField(default=list)
    unit = models.CharField(max_length=16, choices=PriceUnit.choices, default=PriceUnit.IMAGE)
    cost_per_unit_usd = models.DecimalField(max_digits=8, decimal_places=4, default=0)
    price_per_unit = models.PositiveIntegerField(help_text="Tokens per unit, shown to users before they pay.")
    deadline_seconds = models.PositiveIntegerField(default=300)
    max_input_images = models.PositiveSmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["kind", "sort_order", "title"]
        verbose_name = "AI model"
        constraints = [
            models.CheckConstraint(condition=models.Q(price_per_unit__gt=0), name="catalog_price_positive"),
            models.CheckConstraint(condition=models.Q(deadline_seconds__gt=0), name="catalog_deadline_positive"),
        ]

    def __str__(self) -> str:
        return self.title

    def description(self, language: str) -> str:
        return self.description_en if language == "en" else self.description_ru


class ModelBreaker(models.Model):
    """The circuit breaker of one model (see decision 506).

    Closed while `open_until` is empty. After `failures` consecutive vendor
    failures reach the threshold it opens until `open_until`; then one request
    may go through as the probe (`probe_key`): its success closes the breaker,
    its failure opens it again for longer."""

    model = models.OneToOneField(AIModel, on_delete=models.CASCADE, related_name="breaker")
    failures = models.PositiveIntegerField(default=0)
    trips = models.PositiveIntegerField(default=0, help_text="Openings since the last success.")
    open_until = models.DateTimeField(null=True, blank=True)
    probe_key = models.CharField(max_length=128, blank=True)
    probe_started_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"breaker of {self.model_id}"
