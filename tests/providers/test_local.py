"""The offline `local` provider: real JPEGs, latency without sleeping, failure injection."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageStat

from nanobanana.core.errors import ProviderError, ProviderJobLost, ProviderPolicyError, ProviderTransientError
from nanobanana.providers.base import Provider
from nanobanana.providers.local import LocalProvider, job_fails, job_seed


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_bytes(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


# --- Rendering -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect_ratio", "size"),
    [
        ("1:1", (1024, 1024)),
        ("16:9", (1344, 768)),
        ("9:16", (768, 1344)),
        ("4:3", (1152, 864)),
        ("3:4", (864, 1152)),
    ],
)
def test_submit_without_latency_returns_a_jpeg_sized_for_the_aspect_ratio(local_provider, make_job, aspect_ratio, size):
    submission = local_provider.submit(make_job(aspect_ratio=aspect_ratio))

    assert submission.state == "succeeded"
    [result] = submission.results
    image = decode(result.data)
    assert image.format == "JPEG"
    assert image.size == size
    assert (result.width, result.height) == size
    assert result.content_type == "image/jpeg"
    assert result.filename.endswith(".jpg")


@pytest.mark.parametrize("count", [1, 2, 4])
def test_submit_returns_as_many_distinct_images_as_count_asks_for(local_provider, make_job, count):
    submission = local_provider.submit(make_job(count=count))

    assert len(submission.results) == count
    assert len({result.data for result in submission.results}) == count
    assert len({result.filename for result in submission.results}) == count
    assert all(decode(result.data).format == "JPEG" for result in submission.results)


def test_missing_aspect_ratio_and_count_default_to_one_square_image(local_provider, make_job):
    job = make_job()
    job = type(job)(request_id=1, model="m", kind="image", prompt="p", params={})

    [result] = local_provider.submit(job).results

    assert decode(result.data).size == (1024, 1024)


def test_the_same_job_renders_the_same_bytes(local_provider, make_job):
    first = local_provider.submit(make_job(count=2))
    second = LocalProvider().submit(make_job(count=2))

    assert [result.data for result in first.results] == [result.data for result in second.results]


def test_a_different_prompt_renders_a_different_image(local_provider, make_job):
    first = local_provider.submit(make_job(prompt="a red fox in the snow")).results[0]
    second = local_provider.submit(make_job(prompt="a blue whale at dawn")).results[0]

    assert first.data != second.data


def test_the_image_is_a_picture_not_a_flat_fill(local_provider, make_job):
    [result] = local_provider.submit(make_job()).results
    image = decode(result.data).convert("RGB")

    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None
    assert len(colours) > 1000
    # The prompt is drawn in white on a dark panel in the middle.
    middle = image.crop((100, 412, 924, 612))
    assert max(ImageStat.Stat(middle).extrema[0]) >= 240


def test_a_long_cyrillic_prompt_still_renders(local_provider, make_job):
    prompt = "Банан-космонавт над ночным Токио, кинематографичный свет " * 20

    [result] = local_provider.submit(make_job(prompt=prompt, aspect_ratio="9:16")).results

    assert decode(result.data).size == (768, 1344)


def test_edit_mode_blends_the_input_image_into_the_result(local_provider, make_job):
    red = png_bytes((500, 300), (255, 0, 0))
    plain = decode(local_provider.submit(make_job()).results[0].data).convert("RGB")
    edited = decode(local_provider.submit(make_job(input_images=(red,))).results[0].data).convert("RGB")

    corner = (0, 0, 200, 200)  # outside the text panel
    red_plain, green_plain, _ = ImageStat.Stat(plain.crop(corner)).mean
    red_edited, green_edited, _ = ImageStat.Stat(edited.crop(corner)).mean
    assert red_edited - green_edited > red_plain - green_plain + 50


def test_an_unreadable_input_image_is_refused_at_submit(local_provider, make_job):
    with pytest.raises(ProviderError, match="input image"):
        local_provider.submit(make_job(input_images=(b"not an image",)))


def test_more_input_images_than_the_capability_allows_is_refused(local_provider, make_job):
    image = png_bytes((8, 8), (0, 0, 0))
    too_many = (image,) * (local_provider.capabilities.max_input_images + 1)

    with pytest.raises(ProviderError, match="input images"):
        local_provider.submit(make_job(input_images=too_many))


# --- Bad parameters ---------------------------------------------------------------


@pytest.mark.parametrize("aspect_ratio", ["2:1", "1x1", "", None])
def test_an_unknown_aspect_ratio_is_a_permanent_error(local_provider, make_job, aspect_ratio):
    with pytest.raises(ProviderError, match="aspect_ratio") as raised:
        local_provider.submit(make_job(aspect_ratio=aspect_ratio))
    assert type(raised.value) is ProviderError


@pytest.mark.parametrize("count", [0, 5, -1, "2", 1.5, True])
def test_a_count_outside_one_to_four_is_a_permanent_error(local_provider, make_job, count):
    with pytest.raises(ProviderError, match="count") as raised:
        local_provider.submit(make_job(count=count))
    assert type(raised.value) is ProviderError


def test_video_jobs_are_refused(local_provider, make_job):
    with pytest.raises(ProviderError, match="only images"):
        local_provider.submit(make_job(kind="video"))


# --- Latency ----------------------------------------------------------------------


def test_with_latency_submit_is_pending_then_check_succeeds_at_the_ready_time(
    local_provider, local_settings, make_job, fake_clock
):
    local_settings.LOCAL_PROVIDER_LATENCY_SECONDS = 5.0
    job = make_job()

    submitted = local_provider.submit(job)
    assert submitted.state == "pending"
    assert submitted.results == ()
    assert submitted.poll_after == pytest.approx(5.0)

    fake_clock.advance(2)
    halfway = local_provider.check(job, submitted.job_id)
    assert halfway.state == "pending"
    assert halfway.poll_after == pytest.approx(3.0)
    assert halfway.progress == pytest.approx(0.4)

    fake_clock.advance(3)
    done = local_provider.check(job, submitted.job_id)
    assert done.state == "succeeded"
    assert decode(done.results[0].data).format == "JPEG"


def test_a_pending_job_can_be_checked_by_another_provider_instance(
    local_provider, local_settings, make_job, fake_clock
):
    local_settings.LOCAL_PROVIDER_LATENCY_SECONDS = 1.0
    job = make_job()
    job_id = local_provider.submit(job).job_id

    fake_clock.advance(1)

    assert LocalProvider().check(job, job_id).state == "succeeded"


def test_latency_set_after_submit_does_not_change_the_ready_time(local_provider, local_settings, make_job, fake_clock):
    local_settings.LOCAL_PROVIDER_LATENCY_SECONDS = 1.0
    job = make_job()
    job_id = local_provider.submit(job).job_id
    local_settings.LOCAL_PROVIDER_LATENCY_SECONDS = 100.0

    fake_clock.advance(1)

    assert local_provider.check(job, job_id).state == "succeeded"


@pytest.mark.parametrize("job_id", ["", "nonsense", "local-v1-1-2-zzzzzzzzzzzzzzzz", "local-v2-1-2-0123456789abcdef"])
def test_checking_a_job_id_the_provider_never_issued_reports_the_job_lost(local_provider, make_job, job_id):
    with pytest.raises(ProviderJobLost):
        local_provider.check(make_job(), job_id)


def test_checking_a_job_id_with_a_different_job_reports_the_job_lost(local_provider, local_settings, make_job):
    local_settings.LOCAL_PROVIDER_LATENCY_SECONDS = 1.0
    job_id = local_provider.submit(make_job(prompt="one")).job_id

    with pytest.raises(ProviderJobLost):
        local_provider.check(make_job(prompt="another"), job_id)


# --- Failure injection --------------------------------------------------------------


def test_failure_rate_one_fails_every_job_with_a_permanent_error(local_provider, local_settings, make_job):
    local_settings.LOCAL_PROVIDER_FAILURE_RATE = 1.0

    for request_id in range(1, 31):
        with pytest.raises(ProviderError, match="injected failure") as raised:
            local_provider.submit(make_job(request_id=request_id))
        assert type(raised.value) is ProviderError


def test_failure_rate_zero_never_fails(local_provider, make_job):
    seeds = [job_seed(make_job(request_id=request_id)) for request_id in range(1000)]
    outcomes = {local_provider.submit(make_job(request_id=request_id)).state for request_id in range(1, 6)}

    assert not any(job_fails(seed, 0.0) for seed in seeds)
    assert outcomes == {"succeeded"}


def test_an_injected_failure_gives_the_same_answer_on_every_check(local_provider, local_settings, make_job, fake_clock):
    local_settings.LOCAL_PROVIDER_LATENCY_SECONDS = 1.0
    local_settings.LOCAL_PROVIDER_FAILURE_RATE = 0.5
    jobs = [make_job(request_id=request_id) for request_id in range(1, 13)]
    job_ids = [local_provider.submit(job).job_id for job in jobs]
    fake_clock.advance(1)

    def outcome(job, job_id):
        try:
            local_provider.check(job, job_id)
        except ProviderError:
            return "failed"
        return "succeeded"

    first = [outcome(job, job_id) for job, job_id in zip(jobs, job_ids, strict=True)]
    second = [outcome(job, job_id) for job, job_id in zip(jobs, job_ids, strict=True)]
    assert first == second
    assert set(first) == {"failed", "succeeded"}


def test_the_failure_rate_is_roughly_honoured_across_many_seeds(make_job):
    seeds = [job_seed(make_job(request_id=request_id)) for request_id in range(1000)]

    failures = sum(job_fails(seed, 0.3) for seed in seeds)

    assert 230 <= failures <= 370


def test_the_policy_magic_prompt_is_refused_at_submit(local_provider, make_job):
    with pytest.raises(ProviderPolicyError):
        local_provider.submit(make_job(prompt="something [fail:policy] here"))


def test_the_transient_magic_prompt_raises_a_retryable_error_after_one_second(local_provider, make_job):
    with pytest.raises(ProviderTransientError) as raised:
        local_provider.submit(make_job(prompt="[fail:transient] please"))

    assert raised.value.retry_after == 1


def test_the_lost_magic_prompt_is_pending_at_submit_and_lost_at_check(local_provider, make_job, fake_clock):
    job = make_job(prompt="[fail:lost] gone")

    submitted = local_provider.submit(job)
    assert submitted.state == "pending"
    fake_clock.advance(60)

    with pytest.raises(ProviderJobLost):
        local_provider.check(job, submitted.job_id)


# --- The rest of the interface -------------------------------------------------------


def test_cancel_succeeds_for_any_job_id(local_provider):
    assert local_provider.capabilities.supports_cancel is True
    local_provider.cancel("local-v1-1-2-0123456789abcdef")
    local_provider.cancel("unknown")


def test_the_local_provider_satisfies_the_protocol_and_runs_only_when_enabled(settings):
    provider: Provider = LocalProvider()

    assert provider.name == "local"
    assert provider.is_configured() is True  # the test settings enable it
    settings.LOCAL_PROVIDER_ENABLED = False
    assert provider.is_configured() is False
    assert provider.capabilities.kinds == frozenset({"image"})
