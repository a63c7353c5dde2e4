"""Real vendor providers driven by the engine, against the local fakes: a
video that takes a minute never holds a worker, and an image edit carries
the user's photos to the vendor."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from nanobanana.billing.models import HoldStatus
from nanobanana.billing.selectors import wallet_balance
from nanobanana.core import clock as core_clock
from nanobanana.core.errors import ValidationError
from nanobanana.generation import services
from nanobanana.generation.models import GenerationRequest, RequestStatus
from nanobanana.media import download as media_download
from nanobanana.media.storage import media_read, media_save
from nanobanana.providers import registry
from nanobanana.providers.gemini import GeminiProvider
from nanobanana.providers.kling import KlingProvider
from tests.providers.fakes import kling as kling_fake
from tests.providers.fakes.base import PUBLIC_ADDRESS, httpx_client, sample_png
from tests.providers.fakes.gemini import FakeGemini
from tests.providers.fakes.kling import FakeKling

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(core_clock, "now", fake.now)
    monkeypatch.setattr(media_download, "resolver", lambda host: [PUBLIC_ADDRESS])
    return fake


@pytest.fixture
def kling(monkeypatch, catalog, clock) -> FakeKling:
    monkeypatch.setenv("KLING_ACCESS_KEY", kling_fake.ACCESS_KEY)
    monkeypatch.setenv("KLING_SECRET_KEY", kling_fake.SECRET_KEY)
    fake = FakeKling(latency_seconds=60)
    monkeypatch.setattr(
        registry, "PROVIDERS", {**registry.PROVIDERS, "kling": lambda: KlingProvider(http_client=httpx_client(fake))}
    )
    return fake


@pytest.fixture
def gemini(monkeypatch, catalog, clock) -> FakeGemini:
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")  # pragma: allowlist secret
    fake = FakeGemini()
    monkeypatch.setattr(
        registry, "PROVIDERS", {**registry.PROVIDERS, "gemini": lambda: GeminiProvider(http_client=httpx_client(fake))}
    )
    return fake


def unbase64(text: str) -> bytes:
    """The SDK sends URL-safe base64 without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def submit(user, *, model, key, params=None, prompt="a fox in the snow", input_paths=()):
    request, _ = services.request_submit(
        user=user,
        model_slug=model,
        raw_params=params or {},
        prompt=prompt,
        chat_id=user.telegram_id,
        idempotency_key=key,
        input_paths=input_paths,
    )
    return request


def test_a_minute_long_video_completes_while_the_worker_serves_others(kling, clock, make_user, task_queue, settings):
    settings.LOCAL_PROVIDER_LATENCY_SECONDS = 0
    viewer = make_user(tokens=500)
    video = submit(viewer, model="kling-std", key="video", params={"duration": 5})
    task_queue.run_all(include_delayed=False, only="generation.")
    video.refresh_from_db()
    assert video.status == RequestStatus.PROCESSING
    polls = [countdown for name, _, countdown in task_queue.pending if name == "generation.poll_batch"]
    assert polls
    assert polls[-1] > 0  # a scheduled re-check, not a held worker

    # Meanwhile the same worker answers other users at once.
    others = [submit(make_user(tokens=50), model="local-fast", key=f"img-{n}") for n in range(3)]
    task_queue.run_all(include_delayed=False, only="generation.")
    for request in others:
        request.refresh_from_db()
        assert request.status == RequestStatus.SUCCEEDED

    # Each scheduled re-check before the minute is up finds the vendor still working.
    for _ in range(5):
        clock.current += timedelta(seconds=10)
        task_queue.run_all(limit=1, only="generation.poll")
    video.refresh_from_db()
    assert video.status == RequestStatus.PROCESSING

    clock.current += timedelta(seconds=15)
    task_queue.run_all(only="generation.")
    video.refresh_from_db()
    assert video.status == RequestStatus.SUCCEEDED
    result = video.results.get()
    assert result.content_type == "video/mp4"
    assert media_read(path=result.path) == kling.video
    assert video.hold.status == HoldStatus.CAPTURED
    assert wallet_balance(user=viewer).available == 500 - video.price


def test_an_image_edit_sends_the_users_photos_to_the_vendor(gemini, make_user, task_queue):
    photos = [sample_png((200, 0, 0)), sample_png((0, 0, 200))]
    paths = [
        media_save(data=photo, content_type="image/png", prefix="inputs", filename="p.png").path for photo in photos
    ]
    user = make_user(tokens=100)
    request = submit(user, model="nano-banana", key="edit", prompt="make it night", input_paths=paths)
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED
    sent = gemini.calls[0].json()["contents"][0]["parts"]
    inline = [unbase64(part["inlineData"]["data"]) for part in sent if "inlineData" in part]
    assert inline == photos
    assert any(part.get("text") == "make it night" for part in sent)


def test_more_photos_than_the_model_takes_are_refused_before_any_hold(gemini, make_user, task_queue):
    path = media_save(data=sample_png(), content_type="image/png", prefix="inputs", filename="p.png").path
    user = make_user(tokens=100)
    with pytest.raises(ValidationError) as caught:
        submit(user, model="nano-banana", key="many", input_paths=[path] * 4)
    assert caught.value.code == "too_many_images"
    assert wallet_balance(user=user).held == 0
    assert not GenerationRequest.objects.exists()


def test_a_vendor_refusal_reaches_the_user_as_a_reason_and_refunds(gemini, make_user, task_queue):
    gemini.scenario = "policy"
    user = make_user(tokens=100)
    request = submit(user, model="nano-banana", key="refused")
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert (request.status, request.error_code) == (RequestStatus.FAILED, "policy_refusal")
    assert wallet_balance(user=user).available == 100


def test_a_vendor_rate_limit_is_retried_later_and_then_succeeds(gemini, clock, make_user, task_queue):
    gemini.scenario = "rate_limited"
    user = make_user(tokens=100)
    request = submit(user, model="nano-banana", key="busy")
    task_queue.run_all(include_delayed=False, only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.PROCESSING
    assert [countdown for name, _, countdown in task_queue.pending if name == "generation.poll"] == [17]
    gemini.scenario = "success"
    clock.current += timedelta(seconds=17)
    task_queue.run_all(only="generation.")
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED


def test_progress_edits_slow_down_when_many_videos_wait(kling, clock, make_user, task_queue, monkeypatch):
    """With more videos waiting than the progress budget covers at 30 s, each
    status message is refreshed less often."""
    monkeypatch.setattr(services, "_waiting_videos", None)
    monkeypatch.setattr(services, "PROGRESS_EDITS_PER_SECOND", 0.075)  # 3 waiting -> every 40 s
    assert services.progress_every() == services.PROGRESS_EVERY  # nothing waits
    viewers = [make_user(tokens=500) for _ in range(3)]
    videos = [submit(user, model="kling-std", key=f"v{n}", params={"duration": 5}) for n, user in enumerate(viewers)]
    task_queue.run_all(include_delayed=False, only="generation.")
    task_queue.pending.clear()
    assert services.progress_every() == services.PROGRESS_EVERY  # the count is trusted for a while
    monkeypatch.setattr(services, "_waiting_videos", None)
    assert services.progress_every() == timedelta(seconds=40)

    def edits_after(seconds: int) -> int:
        clock.current += timedelta(seconds=seconds)
        for video in videos:
            services.request_poll(request_id=video.pk)
        edits = task_queue.names().count("delivery.status")
        task_queue.pending.clear()
        return edits

    assert edits_after(35) == 0  # 35 s since the first edit: not yet (it would be at 30 s)
    assert edits_after(10) == 3  # 45 s; the vendor takes 60 s


@pytest.fixture
def make_users(make_user):
    return lambda count: [make_user(tokens=500) for _ in range(count)]


def statuses(videos) -> list[str]:
    return [GenerationRequest.objects.get(pk=video.pk).status for video in videos]


def test_waiting_jobs_of_a_listing_vendor_are_asked_about_together(kling, clock, make_users, task_queue):
    videos = [submit(user, model="kling-std", key=f"v{n}") for n, user in enumerate(make_users(5))]
    task_queue.run_all(include_delayed=False, only="generation.")
    assert task_queue.names().count("generation.poll_batch") == 1  # five jobs due together: one batch
    kling.calls.clear()
    for _ in range(5):
        clock.current += timedelta(seconds=10)
        assert task_queue.run_all(limit=1, only="generation.poll_batch") == ["generation.poll_batch"]
    lists = [call for call in kling.calls if call.path == "/v1/videos/text2video"]
    assert len(lists) == 5  # one listing per round, no check per job
    assert kling.paths("GET") == ["/v1/videos/text2video"] * 5
    assert lists[0].query == {"pageNum": ["1"], "pageSize": ["500"]}
    assert statuses(videos) == [RequestStatus.PROCESSING] * 5
    clock.current += timedelta(seconds=15)
    task_queue.run_all(only="generation.")
    assert statuses(videos) == [RequestStatus.SUCCEEDED] * 5  # each finished one was fetched on its own
    assert task_queue.names().count("delivery.deliver_many") == 1  # and the five go out together


def test_when_the_listing_fails_each_job_is_asked_about_on_its_own(kling, clock, make_users, task_queue):
    videos = [submit(user, model="kling-std", key=f"v{n}") for n, user in enumerate(make_users(3))]
    task_queue.run_all(include_delayed=False, only="generation.")
    kling.scenario, kling.phase = "server_error", "list"
    clock.current += timedelta(seconds=10)
    task_queue.run_all(limit=1, only="generation.poll_batch")
    assert task_queue.names().count("generation.complete_many") == 1
    kling.calls.clear()
    task_queue.run_all(limit=1, only="generation.complete_many")  # each asked, running: back to batches
    assert len([call for call in kling.calls if call.path.count("/") == 4]) == 3  # one check per job
    assert statuses(videos) == [RequestStatus.PROCESSING] * 3
    assert [name for name in task_queue.names() if name.startswith("generation.")] == ["generation.poll_batch"]


def test_a_job_the_listing_no_longer_shows_is_failed_and_refunded(kling, clock, make_users, task_queue):
    (video,) = [submit(user, model="kling-std", key="v") for user in make_users(1)]
    task_queue.run_all(include_delayed=False, only="generation.")
    kling.tasks.clear()  # the vendor forgot it
    clock.current += timedelta(seconds=10)
    task_queue.run_all(only="generation.")
    video.refresh_from_db()
    assert video.status == RequestStatus.FAILED
    assert video.hold.status == HoldStatus.RELEASED


def test_a_job_past_its_deadline_gets_its_own_last_answer(kling, clock, make_users, task_queue):
    (video,) = [submit(user, model="kling-std", key="v") for user in make_users(1)]
    task_queue.run_all(include_delayed=False, only="generation.")
    kling.latency_seconds = 10_000  # the vendor never finishes
    for task in kling.tasks.values():
        task["ready_at"] = clock.current + timedelta(seconds=10_000)
    video.refresh_from_db()
    clock.current = video.deadline_at + timedelta(seconds=5)
    task_queue.run_all(only="generation.")
    video.refresh_from_db()
    assert video.status == RequestStatus.FAILED
    assert video.error_code == "timeout"
    assert video.hold.status == HoldStatus.RELEASED


def test_a_finished_job_handed_on_is_not_handed_on_again(kling, clock, make_users, task_queue):
    (video,) = [submit(user, model="kling-std", key="v") for user in make_users(1)]
    task_queue.run_all(include_delayed=False, only="generation.")
    clock.current += timedelta(seconds=61)  # finished at the vendor
    task_queue.run_all(limit=1, only="generation.poll_batch")
    assert task_queue.names().count("generation.complete_many") == 1
    clock.current += timedelta(seconds=5)  # its completion still waits in a long queue
    assert services.requests_poll_batch(provider_name="kling").asked == 0
    assert task_queue.names().count("generation.complete_many") == 1
    task_queue.run_all(only="generation.")
    assert statuses([video]) == [RequestStatus.SUCCEEDED]
    assert task_queue.names().count("delivery.deliver_many") == 1  # delivered with the others it ended with
    assert "delivery.deliver" not in task_queue.names()


def finished_videos(kling, clock, make_users, task_queue, count: int) -> list[GenerationRequest]:
    """`count` Kling videos whose jobs the vendor has finished, waiting to be asked."""
    videos = [submit(user, model="kling-std", key=f"v{index}") for index, user in enumerate(make_users(count))]
    task_queue.run_all(include_delayed=False, only="generation.")
    clock.current += timedelta(seconds=61)
    return videos


def test_a_completion_group_out_of_time_gives_the_rest_back(kling, clock, make_users, task_queue, monkeypatch):
    first, second, third = finished_videos(kling, clock, make_users, task_queue, 3)
    settle = services._ask_settle

    def settle_until_time_is_up(*, ask, answer) -> None:
        if ask.request.pk == second.pk:
            raise SoftTimeLimitExceeded()
        settle(ask=ask, answer=answer)

    monkeypatch.setattr(services, "_ask_settle", settle_until_time_is_up)
    assert services.requests_complete_many(request_ids=[first.pk, second.pk, third.pk]) == [first.pk]
    assert statuses([first, second, third]) == [
        RequestStatus.SUCCEEDED,
        RequestStatus.PROCESSING,
        RequestStatus.PROCESSING,
    ]
    for video in (second, third):  # free for the next batch at once, not after the claim's lease
        video.refresh_from_db()
        assert video.poll_claimed_until is None
    assert task_queue.names().count("delivery.deliver_many") == 1


def test_the_vendor_calls_of_a_completion_group_overlap(kling, clock, make_users, task_queue, monkeypatch):
    videos = finished_videos(kling, clock, make_users, task_queue, services.COMPLETE_CONCURRENCY)
    # Every check waits until all of them are in flight: one at a time, the
    # first would wait in vain and the job would fail.
    together = threading.Barrier(services.COMPLETE_CONCURRENCY, timeout=5)
    check = KlingProvider.check

    def check_together(self, job, job_id):
        together.wait()
        return check(self, job, job_id)

    monkeypatch.setattr(KlingProvider, "check", check_together)
    ended = services.requests_complete_many(request_ids=[video.pk for video in videos])
    assert sorted(ended) == sorted(video.pk for video in videos)
    assert statuses(videos) == [RequestStatus.SUCCEEDED] * len(videos)


def test_a_job_that_cannot_be_asked_about_does_not_stop_its_group(kling, clock, make_users, task_queue, monkeypatch):
    broken, fine = finished_videos(kling, clock, make_users, task_queue, 2)
    prepare = services._ask_prepare

    def prepare_or_fail(*, request):
        if request.pk == broken.pk:
            raise RuntimeError("its input media is unreadable")
        return prepare(request=request)

    monkeypatch.setattr(services, "_ask_prepare", prepare_or_fail)
    assert services.requests_complete_many(request_ids=[broken.pk, fine.pk]) == [fine.pk]
    assert statuses([broken, fine]) == [RequestStatus.PROCESSING, RequestStatus.SUCCEEDED]


def test_a_completion_group_leaves_a_job_another_poll_holds(kling, clock, make_users, task_queue):
    held, free = finished_videos(kling, clock, make_users, task_queue, 2)
    until = clock.current + services.POLL_LEASE
    GenerationRequest.objects.filter(pk=held.pk).update(poll_claimed_until=until)
    assert services.requests_complete_many(request_ids=[held.pk, free.pk]) == [free.pk]
    assert statuses([held, free]) == [RequestStatus.PROCESSING, RequestStatus.SUCCEEDED]
    held.refresh_from_db()
    assert held.poll_claimed_until == until  # neither asked about nor given back
