"""The circuit breaker per model: repeated vendor failures pause the model
before anyone pays; after the cooldown one probe request decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nanobanana.billing.selectors import wallet_balance
from nanobanana.catalog.admin import AIModelAdmin
from nanobanana.catalog.breaker import breaker_failure, breaker_state
from nanobanana.catalog.models import AIModel
from nanobanana.catalog.selectors import models_offered
from nanobanana.core import clock as core_clock
from nanobanana.core.errors import NotFound
from nanobanana.generation import services
from nanobanana.generation.models import RequestStatus

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch, settings) -> Clock:
    fake = Clock()
    monkeypatch.setattr(core_clock, "now", fake.now)
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_COOLDOWN_SECONDS = 60
    settings.LOCAL_PROVIDER_LATENCY_SECONDS = 0
    return fake


def submit(user, key: str, prompt: str = "a lighthouse"):
    request, _ = services.request_submit(
        user=user, model_slug="local-fast", raw_params={}, prompt=prompt, chat_id=1, idempotency_key=key
    )
    return request


def run(task_queue, request):
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    return request


def offered() -> set[str]:
    return {model.slug for model in models_offered()}


def model_id() -> int:
    return AIModel.objects.get(slug="local-fast").pk


def test_vendor_failures_pause_the_model_before_anyone_pays(catalog, clock, make_user, task_queue, settings):
    settings.LOCAL_PROVIDER_FAILURE_RATE = 1.0
    user = make_user(tokens=100)
    for n in range(3):
        assert run(task_queue, submit(user, f"f{n}")).status == RequestStatus.FAILED
    assert "local-fast" not in offered()
    assert "local-studio" in offered()  # other models are not affected
    with pytest.raises(NotFound) as caught:
        submit(user, "refused")
    assert caught.value.code == "model_unavailable"
    assert wallet_balance(user=user).held == 0
    assert wallet_balance(user=user).available == 100


def test_user_faults_do_not_count(catalog, clock, make_user, task_queue):
    user = make_user(tokens=100)
    for n in range(5):
        assert run(task_queue, submit(user, f"p{n}", prompt="[fail:policy]")).error_code == "policy_refusal"
    assert "local-fast" in offered()


def test_a_success_resets_the_count(catalog, clock, make_user, task_queue, settings):
    user = make_user(tokens=100)
    for _ in range(2):
        breaker_failure(model_id=model_id(), code="timeout")
    assert run(task_queue, submit(user, "ok")).status == RequestStatus.SUCCEEDED
    for _ in range(2):
        breaker_failure(model_id=model_id(), code="timeout")
    assert "local-fast" in offered()


def test_after_the_cooldown_one_probe_decides(catalog, clock, make_user, task_queue):
    for _ in range(3):
        breaker_failure(model_id=model_id(), code="provider_error")
    assert breaker_state(model_id=model_id()) == "open"
    clock.advance(61)
    assert "local-fast" in offered()  # half-open: someone may try

    probe = submit(make_user(tokens=100), "probe")
    assert breaker_state(model_id=model_id()) == "probing"
    assert "local-fast" not in offered()  # only one probe at a time
    with pytest.raises(NotFound):
        submit(make_user(tokens=100), "second")

    assert run(task_queue, probe).status == RequestStatus.SUCCEEDED
    assert breaker_state(model_id=model_id()) == "closed"
    assert "local-fast" in offered()


def test_a_failed_probe_reopens_for_longer(catalog, clock, make_user, task_queue, settings):
    for _ in range(3):
        breaker_failure(model_id=model_id(), code="provider_error")
    clock.advance(61)
    settings.LOCAL_PROVIDER_FAILURE_RATE = 1.0
    assert run(task_queue, submit(make_user(tokens=100), "probe")).status == RequestStatus.FAILED
    assert breaker_state(model_id=model_id()) == "open"
    clock.advance(61)
    assert breaker_state(model_id=model_id()) == "open"  # the second cooldown is twice as long
    clock.advance(60)
    assert breaker_state(model_id=model_id()) == "probing"


def test_a_cancelled_probe_lets_the_next_request_probe(catalog, clock, make_user, task_queue):
    for _ in range(3):
        breaker_failure(model_id=model_id(), code="provider_error")
    clock.advance(61)
    user = make_user(tokens=100)
    probe = submit(user, "probe")
    services.request_cancel(request_id=probe.pk, user=user)
    assert "local-fast" in offered()
    assert run(task_queue, submit(user, "next")).status == RequestStatus.SUCCEEDED


def test_the_admin_shows_the_breaker(catalog, clock):
    admin = AIModelAdmin(AIModel, admin_site=None)  # type: ignore[arg-type]
    model = AIModel.objects.get(slug="local-fast")
    assert admin.breaker(model) == "ok"
    for _ in range(3):
        breaker_failure(model_id=model.pk, code="timeout")
    assert admin.breaker(model) == "temporarily unavailable"
