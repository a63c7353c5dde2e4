"""The generation lifecycle: hold at submit, capture on success, release on
failure or cancel, each exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from nanobanana.billing.models import EntryKind, HoldStatus, LedgerEntry
from nanobanana.billing.selectors import wallet_balance
from nanobanana.core.errors import Conflict, InsufficientFunds, ValidationError
from nanobanana.core.process import this_process
from nanobanana.generation import recovery, services
from nanobanana.generation.models import GenerationRequest, RequestStatus
from nanobanana.providers.local import LocalProvider
from tests.processes import ended_process

pytestmark = pytest.mark.django_db(transaction=True)


def submit(user, *, key="k1", prompt="a red fox", params=None, model="local-fast"):
    return services.request_submit(
        user=user,
        model_slug=model,
        raw_params=params or {},
        prompt=prompt,
        chat_id=user.telegram_id,
        idempotency_key=key,
    )


def test_submit_holds_the_price_and_queues_the_job(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    request, created = submit(user, params={"count": 2})
    assert created
    assert request.status == RequestStatus.QUEUED
    assert request.price == 2 * request.model.price_per_unit
    assert request.hold.status == HoldStatus.HELD
    balance = wallet_balance(user=user)
    assert (balance.balance, balance.held) == (30, request.price)
    assert task_queue.names() == ["generation.start"]


def test_submit_with_the_same_key_returns_the_first_request(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    first, _ = submit(user)
    again, created = submit(user)
    assert (again.pk, created) == (first.pk, False)
    assert wallet_balance(user=user).held == first.price
    assert task_queue.names() == ["generation.start"]


def test_submit_without_funds_raises_and_holds_nothing(catalog, make_user, task_queue):
    user = make_user(tokens=1)
    with pytest.raises(InsufficientFunds) as error:
        submit(user, params={"count": 4})
    assert error.value.available == 1
    assert not GenerationRequest.objects.exists()
    assert task_queue.names() == []


def test_prompt_too_long_is_refused_before_any_hold(catalog, make_user, settings):
    settings.PROMPT_MAX_LENGTH = 10
    user = make_user(tokens=30)
    with pytest.raises(ValidationError) as error:
        submit(user, prompt="x" * 11)
    assert error.value.code == "prompt_too_long"
    assert wallet_balance(user=user).held == 0


def test_success_stores_results_captures_and_queues_delivery(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    request, _ = submit(user, params={"count": 2})
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
    assert request.results.count() == 2
    assert request.hold.status == HoldStatus.CAPTURED
    capture = LedgerEntry.objects.get(hold=request.hold)
    assert (capture.kind, capture.amount) == (EntryKind.CAPTURE, -request.price)
    assert wallet_balance(user=user).available == 30 - request.price
    assert "delivery.deliver" in task_queue.ran + task_queue.names()


def test_policy_refusal_fails_and_releases_the_hold_once(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    request, _ = submit(user, prompt="something [fail:policy]")
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert (request.status, request.error_code) == (RequestStatus.FAILED, "policy_refusal")
    assert request.hold.status == HoldStatus.RELEASED
    assert not services.request_fail(request_id=request.pk, code="again", detail="")
    assert wallet_balance(user=user).available == 30
    assert not LedgerEntry.objects.filter(kind=EntryKind.CAPTURE).exists()


def test_transient_errors_are_retried_then_fail_at_the_deadline(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    request, _ = submit(user, prompt="flaky [fail:transient]")
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.PROCESSING
    assert task_queue.names() == ["delivery.status", "generation.poll"]
    assert task_queue.pending[0][2] == services.STATUS_DELAY_SECONDS  # a quick result needs no "processing" edit
    GenerationRequest.objects.filter(pk=request.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    services.request_poll(request_id=request.pk)
    request.refresh_from_db()
    assert (request.status, request.error_code) == (RequestStatus.FAILED, "timeout")
    assert wallet_balance(user=user).available == 30


def test_pending_job_is_polled_not_waited_for(catalog, make_user, task_queue, settings):
    settings.LOCAL_PROVIDER_LATENCY_SECONDS = 30
    user = make_user(tokens=30)
    request, _ = submit(user)
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.PROCESSING
    assert request.provider_job_id
    delayed = [(name, countdown) for name, _, countdown in task_queue.pending]
    assert delayed[-1][0] == "generation.poll"
    assert 25 <= delayed[-1][1] <= 30


def test_partial_result_charges_only_for_what_was_produced(catalog, make_user, task_queue, monkeypatch):
    user = make_user(tokens=30)
    request, _ = submit(user, params={"count": 4})
    real_submit = LocalProvider.submit

    def two_of_four(self, job):
        submission = real_submit(self, job)
        return type(submission)(state="succeeded", job_id=submission.job_id, results=submission.results[:2])

    monkeypatch.setattr(LocalProvider, "submit", two_of_four)
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert request.hold.captured_amount == 2 * request.model.price_per_unit
    assert wallet_balance(user=user).available == 30 - 2 * request.model.price_per_unit


def test_cancel_releases_a_queued_request_and_refuses_a_finished_one(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    queued, _ = submit(user, key="a")
    services.request_cancel(request_id=queued.pk, user=user)
    queued.refresh_from_db()
    assert (queued.status, queued.hold.status) == (RequestStatus.CANCELLED, HoldStatus.RELEASED)
    task_queue.run_all(include_delayed=False, only="generation.")  # the start task finds nothing to do
    queued.refresh_from_db()
    assert queued.status == RequestStatus.CANCELLED

    finished, _ = submit(user, key="b")
    GenerationRequest.objects.filter(pk=finished.pk).update(status=RequestStatus.SUCCEEDED, finished_at=timezone.now())
    with pytest.raises(Conflict):
        services.request_cancel(request_id=finished.pk, user=user)


def test_late_result_after_failure_is_not_charged(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    request, _ = submit(user)
    GenerationRequest.objects.filter(pk=request.pk).update(status=RequestStatus.PROCESSING)
    services.request_fail(request_id=request.pk, code="timeout", detail="")
    late = LocalProvider().submit(services._job_for(request)).results[0]
    assert not services.request_complete(request=request, results=[late])
    request.refresh_from_db()
    assert request.hold.status == HoldStatus.RELEASED


def test_sweep_redrives_lost_steps(catalog, make_user, task_queue):
    user = make_user(tokens=30)
    stale, _ = submit(user, key="stale")
    overdue, _ = submit(user, key="overdue")
    task_queue.pending.clear()
    long_ago = timezone.now() - timedelta(minutes=10)
    GenerationRequest.objects.filter(pk=stale.pk).update(created_at=long_ago)
    GenerationRequest.objects.filter(pk=overdue.pk).update(
        status=RequestStatus.PROCESSING, next_poll_at=long_ago, deadline_at=timezone.now() + timedelta(hours=1)
    )
    report = recovery.requests_sweep()
    assert (report.restarted, report.polled) == (1, 1)
    assert sorted(task_queue.names()) == ["generation.poll", "generation.start"]


def _claimed_mid_call(request, holder):
    """The request as a worker left it, killed while asking the vendor."""
    now = timezone.now()
    GenerationRequest.objects.filter(pk=request.pk).update(
        status=RequestStatus.PROCESSING,
        next_poll_at=now,
        deadline_at=now + timedelta(hours=1),
        poll_claimed_until=now + services.POLL_LEASE,
        poll_claimed_by=holder,
    )


def test_a_poll_claim_of_a_process_that_died_is_given_back_by_the_next_sweep(catalog, make_user, task_queue):
    request, _ = submit(make_user(tokens=30))
    task_queue.pending.clear()
    _claimed_mid_call(request, ended_process())

    report = recovery.requests_sweep()

    assert (report.orphans, report.polled) == (1, 1)
    assert task_queue.names() == ["generation.poll"]
    task_queue.run_all(only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
    assert request.hold.status == HoldStatus.CAPTURED


@pytest.mark.parametrize("holder", ["alive", "elsewhere", "unknown"])
def test_a_poll_claim_whose_process_may_live_waits_for_its_lease(catalog, make_user, task_queue, holder):
    request, _ = submit(make_user(tokens=30))
    task_queue.pending.clear()
    _, boot, pid, started = ended_process().split("|")
    holders = {"alive": this_process(), "elsewhere": f"another-machine|{boot}|{pid}|{started}", "unknown": ""}
    _claimed_mid_call(request, holders[holder])

    report = recovery.requests_sweep()

    assert (report.orphans, report.polled) == (0, 0)
    assert task_queue.names() == []
    services.request_poll(request_id=request.pk)  # and no poll may take it meanwhile
    request.refresh_from_db()
    assert request.status == RequestStatus.PROCESSING


def test_a_second_poll_while_the_first_asks_the_vendor_never_submits_again(catalog, make_user, task_queue, monkeypatch):
    user = make_user(tokens=30)
    request, _ = submit(user)
    calls = []
    original = LocalProvider.submit

    def slow_submit(self, job):
        calls.append(job.prompt)
        if len(calls) == 1:
            services.request_poll(request_id=request.pk)  # a duplicate message, or the sweep, mid-call
        return original(self, job)

    monkeypatch.setattr(LocalProvider, "submit", slow_submit)
    task_queue.run_all(only="generation.")
    request.refresh_from_db()
    assert calls == ["a red fox"]
    assert request.status == RequestStatus.SUCCEEDED
    assert request.attempts == 1


def test_a_claim_left_by_a_killed_worker_expires_and_the_poll_goes_ahead(catalog, make_user, task_queue, settings):
    settings.LOCAL_PROVIDER_LATENCY_SECONDS = 30
    user = make_user(tokens=30)
    request, _ = submit(user)
    task_queue.run_all(include_delayed=False, only="generation.")  # submitted; the vendor is working
    held = timezone.now() + timedelta(seconds=60)
    GenerationRequest.objects.filter(pk=request.pk).update(poll_claimed_until=held)
    services.request_poll(request_id=request.pk)
    assert GenerationRequest.objects.get(pk=request.pk).attempts == 1  # claimed: nothing asked
    GenerationRequest.objects.filter(pk=request.pk).update(poll_claimed_until=timezone.now() - timedelta(seconds=1))
    services.request_poll(request_id=request.pk)
    request.refresh_from_db()
    assert request.attempts == 2
    assert request.poll_claimed_until is None  # given back with the next poll scheduled
