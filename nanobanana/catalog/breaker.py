"""Per-model circuit breaker: a model whose vendor keeps failing is shown as
temporarily unavailable before anyone pays, and comes back by itself once a
probe request succeeds (decision 506).

State lives in the database (`ModelBreaker`), so every web and worker
process sees the same answer. Updates are conditional or row-locked, so
concurrent outcomes cannot lose a count.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet

from nanobanana.catalog.models import ModelBreaker
from nanobanana.core import clock

logger = logging.getLogger(__name__)

# Failure codes that say the vendor (not the user's request) is in trouble.
VENDOR_FAULTS = frozenset(
    {"timeout", "provider_error", "provider_unavailable", "malformed_answer", "job_lost", "result_invalid", "transient"}
)
MAX_BACKOFF_TRIPS = 4


def _threshold() -> int:
    return int(getattr(settings, "BREAKER_FAILURE_THRESHOLD", 5))


def _cooldown(trips: int) -> timedelta:
    base = float(getattr(settings, "BREAKER_COOLDOWN_SECONDS", 120))
    return timedelta(seconds=base * 2 ** min(trips, MAX_BACKOFF_TRIPS))


def _probe_stale() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "BREAKER_PROBE_TIMEOUT_SECONDS", 1800)))


def paused_model_ids() -> QuerySet[ModelBreaker, int]:
    """Models nobody may buy right now: open, or half-open with a probe in flight."""
    now = clock.now()
    return ModelBreaker.objects.filter(
        Q(open_until__gt=now)
        | (Q(open_until__isnull=False) & ~Q(probe_key="") & Q(probe_started_at__gt=now - _probe_stale()))
    ).values_list("model_id", flat=True)


def breaker_admit(*, model_id: int, key: str) -> bool:
    """May a request (identified by `key`) for this model go ahead? Closed:
    yes. Open: no. Half-open: yes for exactly one request, the probe."""
    now = clock.now()
    breaker = ModelBreaker.objects.filter(model_id=model_id).first()
    if breaker is None or breaker.open_until is None:
        return True
    if breaker.open_until > now:
        return False
    if breaker.probe_key == key:
        return True
    claimed = (
        ModelBreaker.objects.filter(model_id=model_id, open_until__lte=now)
        .filter(Q(probe_key="") | Q(probe_started_at__lte=now - _probe_stale()))
        .update(probe_key=key, probe_started_at=now)
    )
    if claimed:
        logger.info("breaker probe admitted", extra={"model_id": model_id})
    return bool(claimed)


def breaker_success(*, model_id: int) -> None:
    """A request succeeded: the breaker closes and forgets its failures."""
    closed = ModelBreaker.objects.filter(model_id=model_id).exclude(failures=0, open_until__isnull=True)
    if closed.update(failures=0, trips=0, open_until=None, probe_key="", probe_started_at=None, last_failure=""):
        logger.info("breaker closed", extra={"model_id": model_id})


def breaker_failure(*, model_id: int, code: str) -> None:
    """A request failed. Only vendor faults count; past the threshold (or when
    the probe fails) the breaker opens, for longer each time."""
    if code not in VENDOR_FAULTS:
        return
    now = clock.now()
    with transaction.atomic():
        ModelBreaker.objects.get_or_create(model_id=model_id)
        breaker = ModelBreaker.objects.select_for_update().get(model_id=model_id)
        breaker.failures = F("failures") + 1
        breaker.last_failure = code[:64]
        breaker.save(update_fields=["failures", "last_failure", "updated_at"])
        breaker.refresh_from_db()
        probing = breaker.open_until is not None and breaker.open_until <= now
        if breaker.failures >= _threshold() or probing:
            breaker.open_until = now + _cooldown(breaker.trips)
            breaker.trips += 1
            breaker.probe_key = ""
            breaker.probe_started_at = None
            breaker.save(update_fields=["open_until", "trips", "probe_key", "probe_started_at", "updated_at"])
            logger.warning(
                "breaker opened", extra={"model_id": model_id, "code": code, "until": breaker.open_until.isoformat()}
            )


def breaker_release_probe(*, model_id: int, key: str) -> None:
    """The probe ended without an answer about the vendor (the user cancelled):
    let the next request probe instead."""
    ModelBreaker.objects.filter(model_id=model_id, probe_key=key).update(probe_key="", probe_started_at=None)


def breaker_state(*, model_id: int) -> str:
    """`closed`, `open` or `probing`, for the admin."""
    breaker = ModelBreaker.objects.filter(model_id=model_id).first()
    if breaker is None or breaker.open_until is None:
        return "closed"
    return "open" if breaker.open_until > clock.now() else "probing"
