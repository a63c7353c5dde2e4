"""The job engine's error classification, deadlines and cancel, driven by a
scripted provider: each test says what the vendor answers, call by call."""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from nanobanana.billing.models import HoldStatus
from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot.presenters import failure_reason
from nanobanana.bot.texts import Texts
from nanobanana.catalog.models import AIModel
from nanobanana.core.errors import (
    ProviderError,
    ProviderJobLost,
    ProviderPolicyError,
    ProviderTransientError,
)
from nanobanana.generation import recovery, services
from nanobanana.generation.models import GenerationRequest, RequestStatus
from nanobanana.providers import registry
from nanobanana.providers.base import Capabilities, GenerationJob, MediaResult, Submission
from nanobanana.providers.local import render_image

pytestmark = pytest.mark.django_db(transaction=True)


def png() -> bytes:
    import io

    buffer = io.BytesIO()
    render_image(prompt="x", width=64, height=64, key="k").save(buffer, format="PNG")
    return buffer.getvalue()


class Scripted:
    """A provider whose answers are queued by the test; records every call."""

    name = "scripted"
    capabilities = Capabilities(kinds=frozenset({"image", "video"}), supports_cancel=True, max_input_images=4)

    def __init__(self) -> None:
        self.answers: deque[Any] = deque()
        self.calls: list[str] = []
        self.cancelled: list[str] = []

    def is_configured(self) -> bool:
        return True

    def _next(self, call: str) -> Submission:
        self.calls.append(call)
        answer = self.answers.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def submit(self, job: GenerationJob) -> Submission:
        return self._next("submit")

    def check(self, job: GenerationJob, job_id: str) -> Submission:
        return self._next(f"check:{job_id}")

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch, catalog: None) -> Scripted:
    scripted = Scripted()
    monkeypatch.setattr(registry, "PROVIDERS", {**registry.PROVIDERS, "scripted": lambda: scripted})
    AIModel.objects.create(
        slug="scripted",
        title="Scripted",
        kind="video",
        provider="scripted",
        provider_model="s-1",
        parameters=[],
        unit="generation",
        price_per_unit=10,
        deadline_seconds=600,
    )
    return scripted


def pending(job_id: str = "job-1", after: float = 10.0) -> Submission:
    return Submission(state="pending", job_id=job_id, poll_after=after)


def done(job_id: str = "job-1") -> Submission:
    return Submission(
        state="succeeded", job_id=job_id, results=(MediaResult(data=png(), content_type="image/png", filename="a.png"),)
    )


def start(user: Any) -> GenerationRequest:
    request, _ = services.request_submit(
        user=user, model_slug="scripted", raw_params={}, prompt="a cat", chat_id=1, idempotency_key="k"
    )
    services.request_start(request_id=request.pk)
    request.refresh_from_db()
    return request


def countdowns(task_queue: Any) -> list[float]:
    return [countdown for name, _, countdown in task_queue.pending if name == "generation.poll"]


def test_transient_errors_are_rescheduled_with_backoff_not_slept(vendor, make_user, task_queue):
    vendor.answers.extend([ProviderTransientError("503"), ProviderTransientError("429", retry_after=7)])
    request = start(make_user(tokens=50))
    assert request.status == RequestStatus.PROCESSING
    services.request_poll(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == RequestStatus.PROCESSING
    first, second = countdowns(task_queue)
    assert first >= 1  # backoff, not an immediate hammering
    assert second == 7  # the vendor's Retry-After wins
    assert vendor.calls == ["submit", "submit"]


def test_a_waiting_video_shows_the_time_waited_every_30_seconds_not_on_every_check(
    vendor, make_user, task_queue, monkeypatch
):
    from nanobanana.core import clock as core_clock
    from tests.fake_clock import FakeClock

    clock = FakeClock(timezone.now())
    monkeypatch.setattr(core_clock, "now", clock.now)
    vendor.answers.append(pending(after=10))
    request = start(make_user(tokens=50))
    shown = []
    for _ in range(6):  # a status check every 10 s for a minute
        shown.append(sum(1 for name, *_ in task_queue.pending if name == "delivery.status"))
        clock.advance(10)
        vendor.answers.append(pending(after=10))
        services.request_poll(request_id=request.pk)
    edits = sum(1 for name, *_ in task_queue.pending if name == "delivery.status")
    # One when the job started, then one at 30 s and one at 60 s of waiting.
    assert shown[0] == 1
    assert edits == 3
    assert len(countdowns(task_queue)) == 7


def test_retries_are_never_scheduled_past_the_deadline(vendor, make_user, task_queue):
    vendor.answers.append(ProviderTransientError("429", retry_after=3600))
    request = start(make_user(tokens=50))
    assert request.deadline_at is not None
    assert request.started_at is not None
    window = (request.deadline_at - request.started_at).total_seconds()
    assert countdowns(task_queue)[-1] <= window + services.DEADLINE_SLACK_SECONDS


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ProviderPolicyError("refused"), "policy_refusal"),
        (ProviderError("bad size", code="invalid_input"), "invalid_input"),
        (ProviderJobLost("unknown id"), "job_lost"),
    ],
)
def test_permanent_errors_fail_release_and_name_the_reason(vendor, make_user, task_queue, error, code):
    user = make_user(tokens=50)
    vendor.answers.extend([pending(), error])
    request = start(user)
    services.request_poll(request_id=request.pk)
    request.refresh_from_db()
    assert (request.status, request.error_code) == (RequestStatus.FAILED, code)
    assert request.hold.status == HoldStatus.RELEASED
    assert wallet_balance(user=user).available == 50
    for language in ("ru", "en"):
        reason = failure_reason(Texts(language), request.error_code)
        assert reason != failure_reason(Texts(language), "something_unknown")


def test_an_unclassified_provider_exception_fails_without_leaking_it(vendor, make_user, task_queue):
    user = make_user(tokens=50)
    vendor.answers.append(KeyError("data"))
    request = start(user)
    assert (request.status, request.error_code) == (RequestStatus.FAILED, "provider_error")
    assert wallet_balance(user=user).available == 50
    reason = failure_reason(Texts("en"), request.error_code)
    assert "KeyError" not in reason


def test_error_details_lose_url_queries_and_keys(vendor, make_user, task_queue):
    vendor.answers.append(
        ProviderError("GET https://cdn.example.com/v.mp4?X-Amz-Signature=abcdef123456 failed, api_key=sk-1234567890abc")
    )
    request = start(make_user(tokens=50))
    assert "abcdef123456" not in request.error_detail  # pragma: allowlist secret
    assert "sk-1234567890abc" not in request.error_detail
    assert "https://cdn.example.com/v.mp4" in request.error_detail


def test_sweep_asks_the_vendor_before_failing_and_delivers_a_late_result(vendor, make_user, task_queue):
    user = make_user(tokens=50)
    vendor.answers.extend([pending(), done()])
    request = start(user)
    task_queue.pending.clear()
    GenerationRequest.objects.filter(pk=request.pk).update(deadline_at=timezone.now() - timedelta(seconds=5))
    report = recovery.requests_sweep()
    assert report.polled == 1
    task_queue.run_all(only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
    assert vendor.calls == ["submit", "check:job-1"]
    assert request.hold.status == HoldStatus.CAPTURED


def test_still_pending_at_the_deadline_fails_and_cancels_at_the_vendor(vendor, make_user, task_queue):
    user = make_user(tokens=50)
    vendor.answers.extend([pending(), pending()])
    request = start(user)
    GenerationRequest.objects.filter(pk=request.pk).update(deadline_at=timezone.now() - timedelta(seconds=5))
    services.request_poll(request_id=request.pk)
    request.refresh_from_db()
    assert (request.status, request.error_code) == (RequestStatus.FAILED, "timeout")
    assert vendor.cancelled == ["job-1"]
    assert wallet_balance(user=user).available == 50


def test_user_cancel_of_a_waiting_job_cancels_at_the_vendor_and_releases(vendor, make_user, task_queue):
    user = make_user(tokens=50)
    vendor.answers.append(pending())
    request = start(user)
    services.request_cancel(request_id=request.pk, user=user)
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert vendor.cancelled == ["job-1"]
    assert wallet_balance(user=user).available == 50
    services.request_poll(request_id=request.pk)  # a poll already queued finds nothing to do
    assert vendor.calls == ["submit"]


def test_a_call_cut_by_the_task_time_limit_is_asked_again_later(vendor, make_user, task_queue):
    from celery.exceptions import SoftTimeLimitExceeded

    user = make_user(tokens=50)
    vendor.answers.extend([SoftTimeLimitExceeded(), done()])
    request = start(user)
    assert request.status == RequestStatus.PROCESSING
    assert countdowns(task_queue)
    services.request_poll(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
