"""The generation lifecycle: submit -> start -> poll -> complete | fail.

Money rules: tokens are held at submit, captured only when results are
stored, released on failure or cancel; the billing app makes each of those
happen at most once. Status changes are conditional updates, so a retried or
duplicated task is harmless. Nothing here sleeps: waiting on a provider is a
scheduled `generation.poll`, or, for a vendor that lists many jobs in one
call (`PendingLister`), a scheduled `generation.poll_batch` that asks about
every waiting job of that vendor at once.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.services import hold_capture, hold_place, hold_release
from nanobanana.catalog.breaker import breaker_admit, breaker_failure, breaker_release_probe, breaker_success
from nanobanana.catalog.models import AIModel, PriceUnit
from nanobanana.catalog.selectors import model_offered
from nanobanana.catalog.services import params_validate, price_quote, units_for
from nanobanana.core import clock
from nanobanana.core.errors import (
    Conflict,
    NotFound,
    ProviderError,
    ProviderTransientError,
    ValidationError,
)
from nanobanana.core.process import this_process
from nanobanana.core.tasks import enqueue
from nanobanana.generation.models import (
    ACTIVE_STATUSES,
    DeliveryStatus,
    GenerationRequest,
    GenerationResult,
    RequestStatus,
)
from nanobanana.media.storage import media_exists, media_read, media_save
from nanobanana.providers.base import GenerationJob, MediaResult, PendingLister, Provider, Submission
from nanobanana.providers.registry import provider_get

logger = logging.getLogger(__name__)

TASK_START = "generation.start"
TASK_POLL = "generation.poll"
TASK_POLL_BATCH = "generation.poll_batch"
TASK_COMPLETE_MANY = "generation.complete_many"
TASK_DELIVER_MANY = "delivery.deliver_many"
TASK_DELIVER = "delivery.deliver"
TASK_STATUS = "delivery.status"
# The "processing" edit of the status message waits this long after the
# start: a result sooner replaces the queued status at once, and the edit,
# shown for a moment and replaced, would be wasted (at 20 quick generations
# a second it was a third of the worker's tasks). Then the task finds the
# request finished and sends nothing.
STATUS_DELAY_SECONDS = 1.0
# How long a poll may be overdue before the sweep assumes its task was lost.
POLL_GRACE = timedelta(seconds=60)
# A poll holds the request this long while it asks the vendor: longer than
# the poll task's hard time limit (300 s), so the claim outlives any call.
POLL_LEASE = timedelta(seconds=330)
REDRIVE_AFTER = timedelta(seconds=120)
# A delivery holds the request this long while it sends: longer than the
# delivery task's hard time limit (300 s), so the claim outlives any delivery.
DELIVERY_LEASE = timedelta(seconds=330)
# A poll is never scheduled sooner than this, nor later than the deadline plus the slack.
MIN_POLL_SECONDS = 0.5
DEADLINE_SLACK_SECONDS = 1.0
# A waiting video's status message shows the time waited, refreshed at most
# this often: an edit per status check would be 6 a minute per job, and with
# a thousand jobs waiting that alone would be past Telegram's 30 messages/s.
PROGRESS_EVERY = timedelta(seconds=30)
# Waiting jobs of a vendor that lists its jobs are asked about together: a
# job due at t is asked in the batch at the end of its window (at most this
# much later), and a batch takes at most BATCH_MAX jobs.
BATCH_WINDOW_SECONDS = 2.0
BATCH_MAX = 1000
# A job a batch hands to its own poll is left out of batches this long, so
# later batches do not hand it on again while that poll waits in the queue;
# if the poll is lost, a batch (or the sweep) takes the job up after it.
HANDOFF_SECONDS = 60.0
# Vendor calls (a status check, and the download of a finished result) of one
# `requests_complete_many` in flight at once.
COMPLETE_CONCURRENCY = 4
# Finished jobs a batch found are completed this many to a task, and each
# task's outcomes go out in one `delivery.deliver_many`, whose sends overlap.
COMPLETE_CHUNK = 20
# The batches this process has already scheduled, as (provider, window end):
# a thousand jobs due in one window make one task, not a thousand.
_batches_scheduled: set[tuple[str, int]] = set()
# Progress edits are the least urgent messages the bot sends: together they
# may take this much of Telegram's 30 messages/s, so with more videos waiting
# each status message is refreshed less often (1,000 waiting: every 100 s),
# and results and replies keep the rest.
PROGRESS_EDITS_PER_SECOND = 10.0
# How long a process trusts its count of waiting videos.
WAITING_COUNT_TTL_SECONDS = 10.0
_waiting_videos: tuple[float, int] | None = None  # (monotonic time counted, count)
# Set by `requests_complete_many`: the requests that ended, to deliver
# together, instead of a `delivery.deliver` each.
_ended_here: ContextVar[list[int] | None] = ContextVar("ended_here", default=None)


@dataclass(frozen=True)
class Quote:
    model: AIModel
    params: dict[str, Any]
    units: int
    price: int


def request_quote(*, model_slug: str, raw_params: dict[str, Any]) -> Quote:
    """Validate a draft against the catalog and price it, without side effects."""
    model = model_offered(slug=model_slug)
    if model is None:
        raise NotFound(f"model {model_slug!r} is not offered", code="model_unavailable")
    params = params_validate(model=model, raw=raw_params)
    return Quote(
        model=model,
        params=params,
        units=units_for(model=model, params=params),
        price=price_quote(model=model, params=params),
    )


def prompt_validate(*, prompt: str) -> str:
    prompt = prompt.strip()
    if not prompt:
        raise ValidationError("empty prompt", code="prompt_empty")
    if len(prompt) > settings.PROMPT_MAX_LENGTH:
        raise ValidationError(f"prompt longer than {settings.PROMPT_MAX_LENGTH} characters", code="prompt_too_long")
    return prompt


def request_submit(
    *,
    user: TelegramUser,
    model_slug: str,
    raw_params: dict[str, Any],
    prompt: str,
    chat_id: int,
    idempotency_key: str,
    status_message_id: int | None = None,
    input_paths: Sequence[str] = (),
) -> tuple[GenerationRequest, bool]:
    """Price the draft, hold the tokens and queue the job, atomically.

    `input_paths` are the user's images (edit, or a video's start and end
    frames), already saved with `media_save`; the model must accept that many.
    The idempotency key makes a repeated tap (or a redelivered update) return
    the request the first one created: (request, created)."""
    existing = GenerationRequest.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    prompt = prompt_validate(prompt=prompt)
    quote = request_quote(model_slug=model_slug, raw_params=raw_params)
    if not breaker_admit(model_id=quote.model.pk, key=idempotency_key):
        raise NotFound(f"model {model_slug!r} is paused by its circuit breaker", code="model_unavailable")
    if len(input_paths) > quote.model.max_input_images:
        raise ValidationError(
            f"{quote.model.slug} takes at most {quote.model.max_input_images} images, got {len(input_paths)}",
            code="too_many_images",
        )
    for path in input_paths:
        if not media_exists(path=path):
            raise ValidationError("an input image is missing from storage", code="input_missing")
    try:
        with transaction.atomic():
            # Raises InsufficientFunds; idempotent by reference under the wallet lock.
            hold = hold_place(user=user, amount=quote.price, reference=f"generation:{idempotency_key}")
            request = GenerationRequest.objects.create(
                user=user,
                model=quote.model,
                prompt=prompt,
                params=quote.params,
                units=quote.units,
                price=quote.price,
                hold=hold,
                idempotency_key=idempotency_key,
                chat_id=chat_id,
                status_message_id=status_message_id,
                input_paths=list(input_paths),
            )
            enqueue(TASK_START, request.pk)
    except IntegrityError:
        # A concurrent submit with the same key won; its hold is the same hold.
        return GenerationRequest.objects.get(idempotency_key=idempotency_key), False
    return request, True


def _job_for(request: GenerationRequest) -> GenerationJob:
    return GenerationJob(
        request_id=request.pk,
        model=request.model.provider_model,
        kind=request.model.kind,  # type: ignore[arg-type]
        prompt=request.prompt,
        params=request.params,
        input_images=tuple(media_read(path=path) for path in request.input_paths or ()),
    )


def request_start(*, request_id: int) -> None:
    """queued -> processing, then submit to the provider.

    The same update takes the poll claim (see `_poll_claim`), so the submit
    below needs no claim of its own."""
    now = clock.now()
    request = GenerationRequest.objects.select_related("model").get(pk=request_id)
    changes = {
        "status": RequestStatus.PROCESSING,
        "started_at": now,
        "deadline_at": now + timedelta(seconds=request.model.deadline_seconds),
        "next_poll_at": now,
        "progress_shown_at": now,
        "poll_claimed_until": now + POLL_LEASE,
        "poll_claimed_by": this_process(),
    }
    started = GenerationRequest.objects.filter(pk=request_id, status=RequestStatus.QUEUED).update(
        **changes, attempts=F("attempts") + 1
    )
    if not started:
        return
    enqueue(TASK_STATUS, request_id, countdown=STATUS_DELAY_SECONDS)
    for field, value in changes.items():
        setattr(request, field, value)
    request.attempts += 1
    _poll_claimed(request=request)


def request_poll(*, request_id: int) -> None:
    """Ask the provider about a processing request: submit it if it has no
    job yet, otherwise check the job. Past the deadline, one last answer
    decides; a job still pending then fails and its tokens are released."""
    if not _poll_claim(request_id=request_id):
        return
    _poll_claimed(request=GenerationRequest.objects.select_related("model").get(pk=request_id))


def _poll_claimed(*, request: GenerationRequest) -> None:
    """The body of `request_poll`, for a request whose poll claim this task holds."""
    ask = _ask_prepare(request=request)
    _ask_settle(ask=ask, answer=_ask_vendor(ask))


@dataclass(frozen=True)
class _Ask:
    """One question to a vendor about a claimed request: what to ask and of whom."""

    request: GenerationRequest
    provider: Provider
    job: GenerationJob
    past_deadline: bool


def _ask_prepare(*, request: GenerationRequest) -> _Ask:
    return _Ask(
        request=request,
        provider=provider_get(request.model.provider),
        job=_job_for(request),
        past_deadline=request.deadline_at is not None and clock.now() >= request.deadline_at,
    )


def _ask_vendor(ask: _Ask) -> Submission | Exception:
    """Submit the job, or check it (which downloads a finished result). The
    vendor's calls only, no database: safe on a thread of its own. An error
    is returned, for `_ask_settle` to judge."""
    try:
        if ask.request.provider_job_id:
            return ask.provider.check(ask.job, ask.request.provider_job_id)
        return ask.provider.submit(ask.job)
    except Exception as error:  # judged in _ask_settle; SoftTimeLimitExceeded included
        return error


def _ask_settle(*, ask: _Ask, answer: Submission | Exception) -> None:
    """Act on the vendor's answer (or error) about a claimed request."""
    request, provider = ask.request, ask.provider
    if isinstance(answer, SoftTimeLimitExceeded):
        # A vendor call outlived this task: like a timeout, ask again later.
        _schedule_poll(request=request, after=_backoff(request.attempts))
    elif isinstance(answer, ProviderTransientError):
        # Timeout, 5xx, 429: ask again later (a scheduled task, never a sleep),
        # but never past the deadline; at the deadline the job times out.
        if not request.provider_job_id:
            breaker_failure(model_id=request.model_id, code="transient")  # the vendor would not take the job
        if ask.past_deadline:
            _give_up(request=request, provider=provider, detail=f"transient error at the deadline: {answer}")
        else:
            _schedule_poll(request=request, after=answer.retry_after or _backoff(request.attempts))
    elif isinstance(answer, ProviderError):
        # Policy refusal, invalid input, lost job: final. The code names the
        # reason the user is told; the detail is for operators only.
        request_fail(request_id=request.pk, code=answer.code, detail=str(answer))
    elif isinstance(answer, Exception):
        # A provider bug or an answer nobody classified: fail for good rather
        # than loop until the deadline, and keep the traceback for operators.
        logger.error("provider raised an unclassified error", extra={"request_id": request.pk}, exc_info=answer)
        request_fail(request_id=request.pk, code="provider_error", detail=f"{type(answer).__name__}: {answer}")
    else:
        _apply_submission(request=request, provider=provider, submission=answer, past_deadline=ask.past_deadline)


def _poll_claim(*, request_id: int) -> bool:
    """Take the right to ask the vendor about this request now.

    A duplicate poll message, or the sweep re-driving a poll that is merely
    slow, then finds the claim taken and does nothing. Without it, two polls
    of a job with no vendor id yet would both submit, and the vendor would run
    (and bill) the job twice. Scheduling the next poll or ending the request
    gives the claim back; a worker killed mid-call leaves it to expire
    (`POLL_LEASE`, longer than any call), and the sweep re-drives after that,
    or as soon as it can tell the claim's process is gone (`recovery`)."""
    now = clock.now()
    free = not_after("poll_claimed_until", now)
    return bool(
        GenerationRequest.objects.filter(free, pk=request_id, status=RequestStatus.PROCESSING).update(
            poll_claimed_until=now + POLL_LEASE, poll_claimed_by=this_process(), attempts=F("attempts") + 1
        )
    )


def not_after(field: str, moment: datetime) -> Q:
    """`field` is unset or not later than `moment`: a claim that is free or
    expired, a progress edit that is due."""
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lte": moment})


def _backoff(attempts: int) -> float:
    return float(min(60, 2 ** min(attempts, 6)))


def _schedule_poll(*, request: GenerationRequest, after: float) -> None:
    """Ask the provider again in `after` seconds, or at the deadline if that
    comes first, so the last answer is always asked for in time."""
    now = clock.now()
    if request.deadline_at is not None:
        until_deadline = (request.deadline_at - now).total_seconds()
        after = min(after, max(until_deadline, 0.0) + DEADLINE_SLACK_SECONDS)
    after = max(after, MIN_POLL_SECONDS)
    due = now + timedelta(seconds=after)
    scheduled = GenerationRequest.objects.filter(pk=request.pk, status=RequestStatus.PROCESSING).update(
        next_poll_at=due, poll_claimed_until=None
    )
    provider = provider_get(request.model.provider)
    if scheduled and request.provider_job_id and isinstance(provider, PendingLister):
        _batch_schedule(provider_name=provider.name, due=due)
    elif scheduled:
        enqueue(TASK_POLL, request.pk, countdown=after)
    else:
        # Cancelled (or failed) while the vendor was being asked: stop its job too.
        _cancel_quietly(provider=provider, job_id=request.provider_job_id)


def _batch_schedule(*, provider_name: str, due: datetime) -> None:
    """Have a `generation.poll_batch` of this vendor run at the end of the
    window `due` falls in, unless this process already asked for it. Another
    process may ask for the same window: the second batch finds nothing due.
    A batch lost with a killed worker leaves its jobs overdue for the sweep."""
    window = math.ceil(due.timestamp() / BATCH_WINDOW_SECONDS)
    key = (provider_name, window)
    if key in _batches_scheduled:
        return
    current = math.floor(clock.now().timestamp() / BATCH_WINDOW_SECONDS)
    _batches_scheduled.difference_update({seen for seen in _batches_scheduled if seen[1] < current})
    _batches_scheduled.add(key)
    countdown = max(window * BATCH_WINDOW_SECONDS - clock.now().timestamp(), 0.0)
    enqueue(TASK_POLL_BATCH, provider_name, window, countdown=countdown)


@dataclass(frozen=True)
class BatchReport:
    asked: int
    waiting: int
    handed_on: int


def requests_poll_batch(*, provider_name: str, window: int | None = None) -> BatchReport:
    """Ask a vendor about all its due jobs in one listing (`PendingLister`).

    The jobs still running are scheduled again (and their progress shown);
    every other one, finished, failed, past its deadline or not listed, is
    handed to `generation.complete_many` (`COMPLETE_CHUNK` to a task), which
    asks about each, downloads, completes or fails it as `request_poll`
    does. When the listing fails, each job is asked about on its own.
    `window` is the one this batch was scheduled for: it asks about every job
    due by the window's end, even when it runs early, and a job due in the
    same window again schedules another batch."""
    _batches_scheduled.discard((provider_name, window or 0))
    provider = provider_get(provider_name)
    if not isinstance(provider, PendingLister):
        return BatchReport(asked=0, waiting=0, handed_on=0)
    now = clock.now()
    cutoff = now
    if window is not None:
        cutoff = max(now, datetime.fromtimestamp(window * BATCH_WINDOW_SECONDS, tz=now.tzinfo))
    rows = _batch_claim(provider_name=provider_name, now=now, cutoff=cutoff)
    if not rows:
        return BatchReport(asked=0, waiting=0, handed_on=0)
    live = [row for row in rows if row["deadline_at"] is None or row["deadline_at"] > now]
    try:
        pending = provider.pending_among([row["provider_job_id"] for row in live]) if live else {}
    except Exception as error:
        # Each job's own check then retries, classifies or fails it as usual.
        transient = isinstance(error, ProviderTransientError)
        logger.warning(
            "vendor job listing failed; asking job by job",
            extra={"provider": provider_name, "error": str(error)},
            exc_info=not transient,
        )
        pending = {}
    waiting: dict[float, list[int]] = {}
    for row in live:
        submission = pending.get(row["provider_job_id"])
        if submission is not None:
            after = submission.poll_after
            deadline = row["deadline_at"]
            if deadline is not None:
                after = min(after, (deadline - now).total_seconds() + DEADLINE_SLACK_SECONDS)
            waiting.setdefault(max(after, MIN_POLL_SECONDS), []).append(row["pk"])
    kept = {pk for ids in waiting.values() for pk in ids}
    handed_on = [row["pk"] for row in rows if row["pk"] not in kept]
    videos = [row["pk"] for row in rows if row["pk"] in kept and row["model__kind"] == "video"]
    with transaction.atomic():
        for after, ids in waiting.items():
            due = now + timedelta(seconds=after)
            GenerationRequest.objects.filter(pk__in=ids, status=RequestStatus.PROCESSING).update(
                next_poll_at=due, poll_claimed_until=None
            )
            _batch_schedule(provider_name=provider_name, due=due)
        GenerationRequest.objects.filter(pk__in=handed_on, status=RequestStatus.PROCESSING).update(
            next_poll_at=now + timedelta(seconds=HANDOFF_SECONDS), poll_claimed_until=None
        )
        for start in range(0, len(handed_on), COMPLETE_CHUNK):
            enqueue(TASK_COMPLETE_MANY, handed_on[start : start + COMPLETE_CHUNK])
        _progress_show_many(request_ids=videos, now=now)
    return BatchReport(asked=len(live), waiting=len(kept), handed_on=len(handed_on))


def requests_complete_many(*, request_ids: Sequence[int]) -> list[int]:
    """`request_poll` for each job a batch handed on, with the vendor calls
    (the check, and the download of a finished result) of up to
    `COMPLETE_CONCURRENCY` jobs in flight at once; the claims are taken in
    one go, and the database work after each answer stays on this thread, in
    the given order. The ones that ended (succeeded or failed) are then
    delivered together by one `delivery.deliver_many`. A job whose poll
    raises is left to the next batch (it is due again `HANDOFF_SECONDS` after
    the hand-off); so are the jobs the task's time limit leaves unsettled,
    their claims given back."""
    ended: list[int] = []
    token = _ended_here.set(ended)
    pool = ThreadPoolExecutor(COMPLETE_CONCURRENCY, thread_name_prefix="complete-many")
    claimed: list[int] = []
    settled: set[int] = set()
    try:
        claimed = _poll_claim_many(
            GenerationRequest.objects.filter(pk__in=request_ids), now=clock.now(), limit=len(request_ids)
        )
        loaded = GenerationRequest.objects.select_related("model").in_bulk(claimed)
        asks: list[_Ask] = []
        for request_id in request_ids:
            try:
                if request_id in loaded:
                    asks.append(_ask_prepare(request=loaded[request_id]))
            except SoftTimeLimitExceeded:
                raise
            except Exception:
                logger.exception("a handed-on poll failed", extra={"request_id": request_id})
        for ask, answer in zip(asks, pool.map(_ask_vendor, asks), strict=True):
            try:
                _ask_settle(ask=ask, answer=answer)
            except SoftTimeLimitExceeded:
                raise
            except Exception:
                logger.exception("a handed-on poll failed", extra={"request_id": ask.request.pk})
            settled.add(ask.request.pk)
    except SoftTimeLimitExceeded:
        unsettled = [pk for pk in claimed if pk not in settled]
        logger.warning("complete_many ran out of time", extra={"left": len(unsettled)})
        GenerationRequest.objects.filter(pk__in=unsettled).update(poll_claimed_until=None)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        _ended_here.reset(token)
    if ended:
        enqueue(TASK_DELIVER_MANY, ended)
    return ended


def _deliver(request_id: int) -> None:
    """Have the outcome of an ended request delivered: with others, inside
    `requests_complete_many`, else by its own `delivery.deliver`."""
    collected = _ended_here.get()
    if collected is None:
        enqueue(TASK_DELIVER, request_id)
    else:
        transaction.on_commit(lambda: collected.append(request_id))


def _batch_claim(*, provider_name: str, now: datetime, cutoff: datetime) -> list[dict[str, Any]]:
    """Take the poll claim of up to `BATCH_MAX` jobs of a vendor due by
    `cutoff`, the longest due first; jobs another poll holds are skipped."""
    due = (
        GenerationRequest.objects.filter(model__provider=provider_name, next_poll_at__lte=cutoff)
        .exclude(provider_job_id="")
        .order_by("next_poll_at")
    )
    ids = _poll_claim_many(due, now=now, limit=BATCH_MAX)
    fields = ("pk", "provider_job_id", "deadline_at", "model__kind")
    return [dict(row) for row in GenerationRequest.objects.filter(pk__in=ids).values(*fields)]


def _poll_claim_many(candidates: QuerySet[GenerationRequest], *, now: datetime, limit: int) -> list[int]:
    """`_poll_claim` for up to `limit` of `candidates` at once, in their
    order: the processing ones no other poll holds (rows another transaction
    has locked are skipped, not waited for). Four round trips for any number."""
    free = not_after("poll_claimed_until", now)
    with transaction.atomic():
        ids = list(
            candidates.select_for_update(skip_locked=True, of=("self",))
            .filter(free, status=RequestStatus.PROCESSING)
            .values_list("pk", flat=True)[:limit]
        )
        GenerationRequest.objects.filter(pk__in=ids).update(
            poll_claimed_until=now + POLL_LEASE, poll_claimed_by=this_process(), attempts=F("attempts") + 1
        )
    return ids


def _give_up(*, request: GenerationRequest, provider: Provider, detail: str) -> None:
    """The deadline passed without a result: fail, release the tokens, and ask
    the vendor to stop working (and charging) on the job."""
    if request_fail(request_id=request.pk, code="timeout", detail=detail):
        _cancel_quietly(provider=provider, job_id=request.provider_job_id)


def _cancel_quietly(*, provider: Provider, job_id: str) -> None:
    if not job_id or not provider.capabilities.supports_cancel:
        return
    try:
        provider.cancel(job_id)
    except Exception:
        # Best effort: the job is already final on our side.
        logger.warning("vendor cancel failed", extra={"provider": provider.name}, exc_info=True)


def _apply_submission(
    *, request: GenerationRequest, provider: Provider, submission: Submission, past_deadline: bool
) -> None:
    if submission.job_id and submission.job_id != request.provider_job_id:
        GenerationRequest.objects.filter(pk=request.pk).update(provider_job_id=submission.job_id)
        request.provider_job_id = submission.job_id
    if submission.state == "succeeded":
        # Also when the deadline has passed: a late result is still delivered.
        request_complete(request=request, results=list(submission.results))
    elif past_deadline:
        _give_up(request=request, provider=provider, detail="provider still pending at the deadline")
    else:
        _schedule_poll(request=request, after=submission.poll_after)
        if request.model.kind == "video":
            _progress_show(request=request)


def process_caches_clear() -> None:
    """Forget what this process remembers between calls (the batches it
    scheduled, the count of waiting videos), as a new process would."""
    global _waiting_videos
    _batches_scheduled.clear()
    _waiting_videos = None


def progress_every() -> timedelta:
    """How often a waiting video's status message is refreshed now:
    `PROGRESS_EVERY`, or longer when that many edits would take more than
    `PROGRESS_EDITS_PER_SECOND`."""
    global _waiting_videos
    checked = time.monotonic()
    if _waiting_videos is None or checked - _waiting_videos[0] > WAITING_COUNT_TTL_SECONDS:
        count = GenerationRequest.objects.filter(status=RequestStatus.PROCESSING, model__kind="video").count()
        _waiting_videos = (checked, count)
    return max(PROGRESS_EVERY, timedelta(seconds=_waiting_videos[1] / PROGRESS_EDITS_PER_SECOND))


def _progress_show(*, request: GenerationRequest) -> None:
    """Have the status message show the time waited so far, unless it did
    less than `progress_every()` ago (checked on the loaded row first, so a
    status check that is not due costs no query)."""
    now = clock.now()
    every = progress_every()
    shown = request.progress_shown_at
    if shown is not None and now - shown < every:
        return
    due = not_after("progress_shown_at", now - every)
    if GenerationRequest.objects.filter(due, pk=request.pk, status=RequestStatus.PROCESSING).update(
        progress_shown_at=now
    ):
        enqueue(TASK_STATUS, request.pk)


def _progress_show_many(*, request_ids: list[int], now: datetime) -> None:
    """`_progress_show` for many waiting videos in one update."""
    if not request_ids:
        return
    every = progress_every()
    due = not_after("progress_shown_at", now - every)
    shown = list(
        GenerationRequest.objects.filter(due, pk__in=request_ids, status=RequestStatus.PROCESSING).values_list(
            "pk", flat=True
        )
    )
    GenerationRequest.objects.filter(pk__in=shown).update(progress_shown_at=now)
    for request_id in shown:
        enqueue(TASK_STATUS, request_id)


def request_complete(*, request: GenerationRequest, results: list[MediaResult]) -> bool:
    """Store the results, mark succeeded and capture the tokens for what was
    actually produced (2 of 4 images pay for 2). `request` is as loaded with
    its model by the poll (what this reads of it never changes after submit).
    Returns False if the request was no longer processing (cancelled or
    failed meanwhile)."""
    request_id = request.pk
    if not results:
        request_fail(request_id=request_id, code="empty_result", detail="provider returned no media")
        return False
    stored = [
        media_save(data=result.data, content_type=result.content_type, prefix="generations", filename=result.filename)
        for result in results
    ]
    with transaction.atomic():
        done = GenerationRequest.objects.filter(pk=request_id, status=RequestStatus.PROCESSING).update(
            status=RequestStatus.SUCCEEDED, finished_at=clock.now(), next_poll_at=None
        )
        if not done:
            logger.info("late result ignored", extra={"request_id": request_id})
            return False
        GenerationResult.objects.bulk_create(
            GenerationResult(
                request_id=request_id,
                index=index,
                path=item.path,
                content_type=item.content_type,
                size=item.size,
                width=result.width,
                height=result.height,
            )
            for index, (item, result) in enumerate(zip(stored, results, strict=True))
        )
        produced = min(len(results), request.units)
        charge = request.price
        if request.model.unit == PriceUnit.IMAGE and produced < request.units:
            charge = request.model.price_per_unit * produced
        hold_capture(hold_id=request.hold_id, amount=min(charge, request.price))
        _deliver(request_id)
    breaker_success(model_id=request.model_id)
    return True


def request_fail(*, request_id: int, code: str, detail: str) -> bool:
    """Fail an active request and release its tokens, once. `code` names the
    reason the user is told; `detail` is kept for operators, with URL query
    strings and bearer-like tokens removed."""
    with transaction.atomic():
        failed = GenerationRequest.objects.filter(pk=request_id, status__in=ACTIVE_STATUSES).update(
            status=RequestStatus.FAILED,
            error_code=code[:64],
            error_detail=redact(detail)[:2000],
            finished_at=clock.now(),
            next_poll_at=None,
        )
        if not failed:
            return False
        request = GenerationRequest.objects.get(pk=request_id)
        hold_release(hold_id=request.hold_id)
        _deliver(request_id)
    breaker_failure(model_id=request.model_id, code=code)
    logger.warning("generation failed", extra={"request_id": request_id, "code": code})
    return True


def request_cancel(*, request_id: int, user: TelegramUser) -> GenerationRequest:
    """The user cancels a queued or waiting request: the tokens come back and,
    when the vendor already has the job and can stop it, it is asked to."""
    with transaction.atomic():
        request = GenerationRequest.objects.select_related("model").filter(pk=request_id, user=user).first()
        if request is None:
            raise NotFound("no such request", code="request_not_found")
        cancelled = GenerationRequest.objects.filter(pk=request_id, user=user, status__in=ACTIVE_STATUSES).update(
            status=RequestStatus.CANCELLED,
            finished_at=clock.now(),
            next_poll_at=None,
            delivery_status=DeliveryStatus.DELIVERED,
        )
        if not cancelled:
            raise Conflict(f"request is {request.status}", code="cannot_cancel")
        hold_release(hold_id=request.hold_id)
    request.refresh_from_db()
    breaker_release_probe(model_id=request.model_id, key=request.idempotency_key)
    if request.provider_job_id:
        _cancel_quietly(provider=provider_get(request.model.provider), job_id=request.provider_job_id)
    return request


_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*")
_SECRETISH = re.compile(r"(?i)(bearer\s+|api[_-]?key[=:]\s*|key=)[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str) -> str:
    """Remove what may carry a secret from an error text: URL query strings
    (signed links, `?key=`) and bearer tokens or API keys."""
    text = _URL_QUERY.sub(r"\1?…", text)
    return _SECRETISH.sub(r"\1…", text)


def result_mark_sent(*, result_id: int) -> None:
    GenerationResult.objects.filter(pk=result_id, sent_at__isnull=True).update(sent_at=clock.now())


def delivery_claim(*, request_id: int) -> datetime | None:
    """Take the right to send this request's outcome; None if it is taken,
    already delivered, or the request has not ended.

    Without it, a delivery the sweep re-drives while the first one is still
    sending (retrying a 429, or queued behind a backlog) would send the same
    files twice. The claim's expiry is its token: `delivery_release` only
    gives back the claim it was handed. A worker killed
    mid-delivery leaves it to expire (`DELIVERY_LEASE`), and the sweep
    re-drives after that, or as soon as it can tell the claim's process is
    gone (`recovery`)."""
    now = clock.now()
    until = now + DELIVERY_LEASE
    free = not_after("delivery_claimed_until", now)
    claimed = GenerationRequest.objects.filter(
        free,
        pk=request_id,
        delivery_status=DeliveryStatus.PENDING,
        status__in=(RequestStatus.SUCCEEDED, RequestStatus.FAILED),
    ).update(delivery_claimed_until=until, delivery_claimed_by=this_process())
    return until if claimed else None


def delivery_release(*, request_id: int, claim: datetime) -> None:
    """Give a claim back (the delivery will be retried): the retry, or the
    sweep, may take it at once."""
    GenerationRequest.objects.filter(pk=request_id, delivery_claimed_until=claim).update(delivery_claimed_until=None)


def request_mark_delivered(*, request_id: int, delivery_status: str) -> bool:
    """Record how the outcome reached the user, once."""
    return bool(
        GenerationRequest.objects.filter(pk=request_id, delivery_status=DeliveryStatus.PENDING).update(
            delivery_status=delivery_status, delivered_at=clock.now(), delivery_claimed_until=None
        )
    )
