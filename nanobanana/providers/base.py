"""The provider interface: what `generation` hands a vendor and what it gets back.

Everything here is provider-neutral. A vendor module translates these
dataclasses to its own API and back, and translates its failures into the
errors in `nanobanana.core.errors`:

- `ProviderPolicyError`: the vendor refused the content (never retried);
- `ProviderError`: permanent failure, e.g. invalid input (never retried);
- `ProviderTransientError(retry_after=...)`: timeout, 5xx, 429 (retried
  until the request's deadline);
- `ProviderJobLost`: the vendor no longer knows a job id it gave us.

Failures are raised, never returned: a `Submission` is always a success so
far (pending) or a finished success (succeeded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

MediaKind = Literal["image", "video"]
SubmissionState = Literal["pending", "succeeded"]


@dataclass(frozen=True, slots=True)
class GenerationJob:
    """One generation request as a provider sees it.

    `model` is the vendor's own model name (the catalog maps ours to theirs).
    `params` holds the validated catalog parameters, e.g.
    `{"aspect_ratio": "16:9", "count": 2}`. `input_images` are the user's
    reference images (edit mode), already downloaded and size-checked.
    """

    request_id: int
    model: str
    kind: MediaKind
    prompt: str
    params: Mapping[str, Any]
    input_images: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class MediaResult:
    """One finished file, as bytes. `filename` is a display name, never a path."""

    data: bytes = field(repr=False)
    content_type: str
    filename: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """Where a job stands.

    - `pending`: ask again with `Provider.check` after `poll_after` seconds;
      `progress` (0..1) is shown to the user when the vendor reports it.
    - `succeeded`: `results` holds every file; the job is finished.
    """

    state: SubmissionState
    job_id: str
    results: tuple[MediaResult, ...] = ()
    poll_after: float = 0.0
    progress: float | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do, so callers can refuse early instead of failing late."""

    kinds: frozenset[str]
    supports_cancel: bool
    max_input_images: int


class Provider(Protocol):
    """One AI vendor (or the offline `local` provider).

    All methods are synchronous: they run inside Celery tasks, one call per
    task run. The lifecycle is driven from outside (see DESIGN.md, "The
    generation lifecycle"):

    1. `submit` once; it returns a finished `Submission` or a pending one
       with a vendor job id.
    2. While pending, a scheduled task calls `check` after `poll_after`
       seconds (or when the vendor's signed callback arrives), until it
       succeeds, raises, or the request's deadline passes.
    3. `cancel` when the user or the deadline gives up on the job.

    No method may sleep to wait for a vendor: waiting is the scheduler's job,
    so a worker slot is never held by a job that is merely in progress.
    """

    name: str
    capabilities: Capabilities

    def is_configured(self) -> bool:
        """True when the provider has what it needs to work (API keys, URLs).

        Must not call the vendor; it is used to choose defaults and by health
        checks.
        """
        ...

    def submit(self, job: GenerationJob) -> Submission:
        """Start `job` at the vendor and return fast.

        Returns `succeeded` with results when the vendor answers synchronously,
        otherwise `pending` with the vendor's job id. Raises the errors listed
        in this module's docstring. Must be safe to call again for the same
        job after a transient error (the vendor may then see it twice; use the
        vendor's idempotency key when it has one, derived from
        `job.request_id`).
        """
        ...

    def check(self, job: GenerationJob, job_id: str) -> Submission:
        """Ask the vendor how `job_id` (returned by `submit`) is doing.

        Called on a schedule, possibly many times and from any worker process,
        so it must not depend on state kept in memory since `submit`. Returns
        `pending` again or `succeeded` with the results downloaded as bytes;
        raises `ProviderJobLost` when the vendor no longer knows the job.
        """
        ...

    def cancel(self, job_id: str) -> None:
        """Ask the vendor to stop `job_id`. Best effort and idempotent:
        cancelling a finished or unknown job is not an error. A provider
        without `capabilities.supports_cancel` does nothing."""
        ...


@runtime_checkable
class PendingLister(Protocol):
    """A provider that can say in one call (a page of its task list) which
    of many jobs are still running, so a thousand waiting jobs cost a few
    calls per round instead of a thousand `check`s.

    `pending_among` returns a pending `Submission` for each job id the vendor
    lists as still working. Every other id (finished, failed, or not on the
    pages read) is left to `check`, which downloads results and classifies
    failures as usual. Raises the errors listed in this module's docstring."""

    def pending_among(self, job_ids: Sequence[str]) -> Mapping[str, Submission]: ...
