"""One contract for every vendor provider, run against a local fake of that
vendor's HTTP API (tests/providers/fakes), plugged in at the transport
layer under the official SDK.

Every provider must: finish a job (at submit, or through checks that ask
for a later poll and never sleep); turn a content refusal into
`ProviderPolicyError`; 429, 5xx and timeouts into `ProviderTransientError`
(with the vendor's Retry-After); an answer without the documented shape into
a permanent `malformed_answer`; an unknown job into `ProviderJobLost`; and
cancel idempotently where the vendor can. No error text carries a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from nanobanana.core.errors import ProviderError, ProviderJobLost, ProviderPolicyError, ProviderTransientError
from nanobanana.media import download as media_download
from nanobanana.providers import kling as kling_module
from nanobanana.providers.base import GenerationJob, Provider, Submission
from nanobanana.providers.gemini import GeminiProvider
from nanobanana.providers.kling import KlingProvider
from nanobanana.providers.openai_api import OpenAIProvider
from nanobanana.providers.runway import RunwayProvider
from tests.providers.fakes import kling as kling_fake
from tests.providers.fakes.base import (
    PUBLIC_ADDRESS,
    RETRY_AFTER,
    FakeVendor,
    httpx2_client,
    httpx_client,
    sample_png,
)
from tests.providers.fakes.gemini import FakeGemini
from tests.providers.fakes.kling import FakeKling
from tests.providers.fakes.openai import FakeOpenAI
from tests.providers.fakes.runway import FakeRunway

GEMINI_ENV = {"GEMINI_API_KEY": "test-gemini-key"}  # pragma: allowlist secret
OPENAI_ENV = {"OPENAI_API_KEY": "sk-test"}  # pragma: allowlist secret
KLING_ENV = {"KLING_ACCESS_KEY": kling_fake.ACCESS_KEY, "KLING_SECRET_KEY": kling_fake.SECRET_KEY}
RUNWAY_ENV = {"RUNWAYML_API_SECRET": "key_test"}  # pragma: allowlist secret
SECRETS = ("test-gemini-key", "sk-test", kling_fake.SECRET_KEY, "key_test")


@dataclass(frozen=True)
class Spec:
    """One provider in one mode, with its fake and a job that fits it."""

    id: str
    fake: Callable[[], FakeVendor]
    provider: Callable[[FakeVendor], Provider]
    env: dict[str, str]
    model: str
    kind: str
    params: dict[str, Any]
    inputs: int = 0
    asynchronous: bool = False
    result_types: tuple[str, ...] = ("image/png",)
    submit_policy: bool = True  # the vendor can refuse at submit (not only while running)
    extra: dict[str, Any] = field(default_factory=dict)

    def job(self, request_id: int = 7) -> GenerationJob:
        return GenerationJob(
            request_id=request_id,
            model=self.model,
            kind=self.kind,  # type: ignore[arg-type]
            prompt="a banana surfing at sunset",
            params=self.params,
            input_images=tuple(sample_png((10 * index, 80, 160)) for index in range(self.inputs)),
        )


def _httpx(cls: Callable[..., Provider]) -> Callable[[FakeVendor], Provider]:
    return lambda fake: cls(http_client=httpx_client(fake))


SPECS = [
    Spec(
        "gemini-image",
        FakeGemini,
        _httpx(GeminiProvider),
        GEMINI_ENV,
        "gemini-2.5-flash-image",
        "image",
        {"aspect_ratio": "16:9", "count": 2},
    ),
    Spec(
        "gemini-pro-edit",
        FakeGemini,
        _httpx(GeminiProvider),
        GEMINI_ENV,
        "gemini-3-pro-image-preview",
        "image",
        {"aspect_ratio": "1:1", "image_size": "4K", "count": 1},
        inputs=2,
    ),
    Spec(
        "veo",
        FakeGemini,
        _httpx(GeminiProvider),
        GEMINI_ENV,
        "veo-3.1-fast-generate-preview",
        "video",
        {"aspect_ratio": "16:9", "duration": 8, "resolution": "720p"},
        inputs=2,
        asynchronous=True,
        result_types=("video/mp4",),
        submit_policy=False,
    ),
    Spec(
        "gpt-image",
        FakeOpenAI,
        lambda fake: OpenAIProvider(http_client=httpx2_client(fake)),
        OPENAI_ENV,
        "gpt-image-1",
        "image",
        {"aspect_ratio": "3:2", "quality": "high", "count": 2},
    ),
    Spec(
        "gpt-image-edit",
        FakeOpenAI,
        lambda fake: OpenAIProvider(http_client=httpx2_client(fake)),
        OPENAI_ENV,
        "gpt-image-1",
        "image",
        {"aspect_ratio": "1:1", "count": 1},
        inputs=3,
    ),
    Spec(
        "sora",
        FakeOpenAI,
        lambda fake: OpenAIProvider(http_client=httpx2_client(fake)),
        OPENAI_ENV,
        "sora-2",
        "video",
        {"aspect_ratio": "9:16", "duration": 8},
        inputs=1,
        asynchronous=True,
        result_types=("video/mp4",),
        submit_policy=False,
    ),
    Spec(
        "kling-text",
        FakeKling,
        _httpx(KlingProvider),
        KLING_ENV,
        "kling-v2-1",
        "video",
        {"mode": "std", "aspect_ratio": "16:9", "cfg_scale": 0.5, "duration": 5},
        asynchronous=True,
        result_types=("video/mp4",),
    ),
    Spec(
        "kling-image-tail",
        FakeKling,
        _httpx(KlingProvider),
        KLING_ENV,
        "kling-v2-1",
        "video",
        {"mode": "pro", "duration": 10},
        inputs=2,
        asynchronous=True,
        result_types=("video/mp4",),
    ),
    Spec(
        "runway",
        FakeRunway,
        _httpx(RunwayProvider),
        RUNWAY_ENV,
        "gen4_turbo",
        "video",
        {"aspect_ratio": "16:9", "duration": 5},
        inputs=1,
        asynchronous=True,
        result_types=("video/mp4",),
    ),
]


@dataclass
class Harness:
    spec: Spec
    fake: FakeVendor
    provider: Provider

    def run(self, *, max_checks: int = 5) -> Submission:
        """Submit, then check as the engine would (without waiting: the fake
        moves on each call) until the job is finished."""
        job = self.spec.job()
        submission = self.provider.submit(job)
        for _ in range(max_checks):
            if submission.state == "succeeded":
                return submission
            assert submission.poll_after > 0, "a pending answer must say when to ask again"
            submission = self.provider.check(job, submission.job_id)
        return submission

    def fail_with(self, scenario: str, phase: str) -> Exception:
        self.fake.scenario, self.fake.phase = scenario, phase
        with pytest.raises(ProviderError) as caught:
            self.run()
        text = str(caught.value)
        assert not any(secret in text for secret in SECRETS), f"an error carries a key: {text}"
        return caught.value


@pytest.fixture(params=SPECS, ids=[spec.id for spec in SPECS])
def harness(request, monkeypatch, fake_clock) -> Harness:
    spec: Spec = request.param
    for name, value in spec.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(media_download, "resolver", lambda host: [PUBLIC_ADDRESS])
    fake = spec.fake()
    return Harness(spec=spec, fake=fake, provider=spec.provider(fake))


def phases(harness: Harness) -> list[str]:
    return ["submit", "check"] if harness.spec.asynchronous else ["submit"]


class TestProviderContract:
    def test_is_configured_by_its_key_alone(self, harness, monkeypatch):
        assert harness.provider.is_configured()
        for name in harness.spec.env:
            monkeypatch.delenv(name)
        assert not harness.provider.is_configured()

    def test_success_returns_the_vendors_files(self, harness):
        submission = harness.run()
        assert submission.state == "succeeded"
        assert submission.results
        expected = harness.spec.params.get("count", 1) if harness.spec.kind == "image" else 1
        assert len(submission.results) == expected
        for result in submission.results:
            assert result.content_type in harness.spec.result_types
            served = getattr(harness.fake, "video" if harness.spec.kind == "video" else "image")
            assert result.data == served
            assert "/" not in result.filename

    def test_synchronous_vendors_finish_at_submit_and_others_answer_pending_first(self, harness):
        job = harness.spec.job()
        if not harness.spec.asynchronous:
            assert harness.provider.submit(job).state == "succeeded"
            return
        first = harness.provider.submit(job)
        assert first.state == "pending"
        assert first.job_id
        second = harness.provider.check(job, first.job_id)
        assert second.state == "pending"
        assert harness.provider.check(job, first.job_id).state == "succeeded"

    def test_content_refusal_is_a_policy_error(self, harness):
        phase = "check" if harness.spec.asynchronous else "submit"
        assert isinstance(harness.fail_with("policy", phase), ProviderPolicyError)
        if harness.spec.asynchronous and harness.spec.submit_policy:
            assert isinstance(harness.fail_with("policy", "submit"), ProviderPolicyError)

    def test_rate_limit_is_transient_with_the_vendors_retry_after(self, harness):
        for phase in phases(harness):
            error = harness.fail_with("rate_limited", phase)
            assert isinstance(error, ProviderTransientError), phase
            assert error.retry_after == RETRY_AFTER, phase

    def test_server_error_is_transient(self, harness):
        for phase in phases(harness):
            assert isinstance(harness.fail_with("server_error", phase), ProviderTransientError), phase

    def test_timeout_is_transient(self, harness):
        for phase in phases(harness):
            assert isinstance(harness.fail_with("timeout", phase), ProviderTransientError), phase

    def test_malformed_answer_is_a_permanent_error(self, harness):
        for phase in phases(harness):
            error = harness.fail_with("malformed", phase)
            assert not isinstance(error, ProviderTransientError | ProviderPolicyError | ProviderJobLost), phase
            assert error.code == "malformed_answer", (phase, str(error))

    def test_unknown_job_is_lost(self, harness):
        job = harness.spec.job()
        if harness.spec.asynchronous:
            submission = harness.provider.submit(job)
            harness.fake.scenario, harness.fake.phase = "lost", "check"
            job_id = submission.job_id
        else:
            job_id = "never-issued"
        with pytest.raises(ProviderJobLost):
            harness.provider.check(job, job_id)

    def test_cancel_is_idempotent_and_reaches_the_vendor_when_it_can(self, harness):
        if not harness.spec.asynchronous:
            harness.provider.cancel("never-issued")
            return
        submission = harness.provider.submit(harness.spec.job())
        before = len(harness.fake.calls)
        harness.provider.cancel(submission.job_id)
        harness.provider.cancel(submission.job_id)  # twice: no error
        deletes = [call for call in harness.fake.calls[before:] if call.method == "DELETE"]
        if harness.provider.capabilities.supports_cancel:
            assert deletes, "a vendor with a cancel endpoint must be asked"
        else:
            assert harness.fake.calls[before:] == [], "a provider without cancel must not call the vendor"

    def test_a_wrong_key_makes_the_model_unavailable_not_retried(self, harness, monkeypatch):
        for name in harness.spec.env:
            monkeypatch.setenv(name, "wrong-key-0000000000000000000000")
        with pytest.raises(ProviderError) as caught:
            harness.run()
        assert caught.value.code == "provider_unavailable"
        assert "wrong-key" not in str(caught.value)

    def test_bad_parameters_are_invalid_input_before_any_call(self, harness):
        job = harness.spec.job()
        bad = GenerationJob(
            request_id=job.request_id,
            model=job.model,
            kind=job.kind,
            prompt=job.prompt,
            params={**job.params, **({"count": 99} if job.kind == "image" else {"duration": 999})},
            input_images=job.input_images,
        )
        with pytest.raises(ProviderError) as caught:
            harness.provider.submit(bad)
        assert caught.value.code == "invalid_input"
        assert harness.fake.calls == []


def test_gemini_keeps_the_images_made_before_a_later_call_fails(monkeypatch, fake_clock):
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")  # pragma: allowlist secret
    fake = FakeGemini()
    real = fake.handle
    seen = []

    def second_call_fails(call):
        seen.append(call)
        if len(seen) == 2:
            fake.scenario, fake.phase = "server_error", "submit"
        return real(call)

    monkeypatch.setattr(fake, "handle", second_call_fails)
    provider = GeminiProvider(http_client=httpx_client(fake))
    submission = provider.submit(SPECS[0].job())  # asks for two images
    assert submission.state == "succeeded"
    assert len(submission.results) == 1


def test_kling_names_its_running_jobs_from_its_task_list_page_by_page(monkeypatch, fake_clock):
    """`pending_among` (the batch poller's one call per round): running jobs
    only, read a page at a time until every job was seen or a page is short."""
    for name, value in KLING_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(kling_module, "LIST_PAGE_SIZE", 2)
    fake = FakeKling(latency_seconds=60)
    provider = KlingProvider(http_client=httpx_client(fake))
    jobs = [
        provider.submit(GenerationJob(request_id=n, model="kling-v2-1", kind="video", prompt="waves", params={}))
        for n in range(5)
    ]
    oldest = jobs[0].job_id.partition(":")[2]
    fake.tasks[oldest]["ready_at"] = fake_clock.now()  # finished: left to its own check
    fake.calls.clear()
    pending = provider.pending_among([job.job_id for job in jobs] + ["text2video:404404"])
    assert sorted(pending) == sorted(job.job_id for job in jobs[1:])
    assert all(item.state == "pending" for item in pending.values())
    # Listed jobs are asked about again sooner than single checks: a listing costs per round, not per job.
    assert {item.poll_after for item in pending.values()} == {kling_module.LIST_POLL_SECONDS}
    assert kling_module.LIST_POLL_SECONDS < kling_module.POLL_SECONDS
    pages = [call.query["pageNum"] for call in fake.calls]
    assert pages == [["1"], ["2"], ["3"]]  # 2 + 2 + 1: the short page ends the search for the unknown one
    fake.scenario, fake.phase = "rate_limited", "list"
    with pytest.raises(ProviderTransientError) as caught:
        provider.pending_among([jobs[1].job_id])
    assert caught.value.retry_after == RETRY_AFTER
