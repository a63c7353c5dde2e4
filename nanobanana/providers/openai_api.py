"""OpenAI: GPT Image (`gpt-image-1`) and Sora 2 videos, through the
official `openai` SDK, with `OPENAI_API_KEY`.

Images are synchronous: `images.generate`, or `images.edit` when the user
sent reference images; base64 results come back in the answer. Videos are
jobs: `videos.create` returns an id, `videos.retrieve` reports `queued`,
`in_progress`, `completed` or `failed`, and `videos.download_content` gives
the MP4. The SDK's own retries are off (they sleep); the engine retries.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx2
import openai

from nanobanana.core.errors import AppError, ProviderError, ProviderJobLost, ProviderPolicyError
from nanobanana.media import download as media_download
from nanobanana.media.storage import MAX_MEDIA_BYTES
from nanobanana.providers.base import Capabilities, GenerationJob, MediaResult, Submission
from nanobanana.providers.common import (
    TIMEOUT,
    choice,
    env,
    malformed,
    positive_int,
    raise_for_http,
    raise_for_time_limit,
    raise_for_transport,
    sniff_image_type,
)

VENDOR = "openai"
MAX_IMAGES = 4
MAX_INPUT_IMAGES = 16
VIDEO_POLL_SECONDS = 10.0
IMAGE_SIZES = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536", "auto": "auto"}
IMAGE_QUALITIES = {value: value for value in ("low", "medium", "high", "auto")}
VIDEO_SIZES = {"16:9": "1280x720", "9:16": "720x1280", "16:9-hd": "1792x1024", "9:16-hd": "1024x1792"}
VIDEO_SECONDS = {4: "4", 8: "8", 12: "12"}
POLICY_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter"})


class OpenAIProvider:
    """GPT Image and Sora 2; see the module docstring."""

    name = VENDOR
    capabilities = Capabilities(kinds=frozenset({"image", "video"}), supports_cancel=True, max_input_images=16)

    def __init__(self, *, http_client: httpx2.Client | None = None) -> None:
        self._http = http_client

    def is_configured(self) -> bool:
        return bool(env("OPENAI_API_KEY"))

    def submit(self, job: GenerationJob) -> Submission:
        if job.kind == "image":
            return self._images(job)
        return self._start_video(job)

    def check(self, job: GenerationJob, job_id: str) -> Submission:
        if job.kind != "video":
            raise ProviderJobLost("openai: image jobs finish at submit")
        client = self._client()
        try:
            video = client.videos.retrieve(job_id)
        except Exception as error:
            _translate(error, checking=True)
            raise
        return self._video_state(job, job_id=job_id, answer=video.model_dump())

    def cancel(self, job_id: str) -> None:
        """Sora has no cancel; deleting the video is how a job is dropped."""
        if not job_id.startswith("video_"):
            return
        try:
            self._client().videos.delete(job_id)
        except openai.NotFoundError:
            return

    # --- Images -----------------------------------------------------------------

    def _images(self, job: GenerationJob) -> Submission:
        arguments: dict[str, Any] = {
            "model": job.model,
            "prompt": job.prompt,
            "n": positive_int(job.params, "count", 1, maximum=MAX_IMAGES),
            "size": choice(job.params, "aspect_ratio", IMAGE_SIZES, "1:1"),
        }
        if "quality" in job.params:
            arguments["quality"] = choice(job.params, "quality", IMAGE_QUALITIES, "auto")
        if len(job.input_images) > MAX_INPUT_IMAGES:
            raise ProviderError(f"openai: at most {MAX_INPUT_IMAGES} reference images", code="invalid_input")
        client = self._client()
        try:
            if job.input_images:
                files = [
                    (f"input-{index}.{sniff_image_type(data).rsplit('/', 1)[-1]}", data, sniff_image_type(data))
                    for index, data in enumerate(job.input_images)
                ]
                answer = client.images.edit(image=files, **arguments)
            else:
                answer = client.images.generate(**arguments)
        except Exception as error:
            _translate(error, checking=False)
            raise
        results = []
        for index, item in enumerate(answer.data or []):
            if not item.b64_json:
                raise malformed(VENDOR, "image without b64_json")
            try:
                data = base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError) as error:
                raise malformed(VENDOR, "b64_json is not base64") from error
            content_type = media_download.content_type_of(data, wanted=("image/png", "image/jpeg", "image/webp"))
            extension = content_type.rsplit("/", 1)[-1]
            results.append(
                MediaResult(
                    data=data,
                    content_type=content_type,
                    filename=f"nanobanana-{job.request_id}-{index + 1}.{extension}",
                )
            )
        if not results:
            raise malformed(VENDOR, "no images in the answer")
        return Submission(state="succeeded", job_id=f"openai-image-{job.request_id}", results=tuple(results))

    # --- Videos -----------------------------------------------------------------

    def _start_video(self, job: GenerationJob) -> Submission:
        arguments: dict[str, Any] = {
            "model": job.model,
            "prompt": job.prompt,
            "seconds": choice(job.params, "duration", VIDEO_SECONDS, 4),
            "size": choice(job.params, "aspect_ratio", VIDEO_SIZES, "16:9"),
        }
        if len(job.input_images) > 1:
            raise ProviderError("openai: one start image at most", code="invalid_input")
        if job.input_images:
            data = job.input_images[0]
            content_type = sniff_image_type(data)
            arguments["input_reference"] = (f"start.{content_type.rsplit('/', 1)[-1]}", data, content_type)
        client = self._client()
        try:
            video = client.videos.create(**arguments)
        except Exception as error:
            _translate(error, checking=False)
            raise
        answer = video.model_dump()
        job_id = answer.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise malformed(VENDOR, "video job without an id")
        return self._video_state(job, job_id=job_id, answer=answer)

    def _video_state(self, job: GenerationJob, *, job_id: str, answer: dict[str, Any]) -> Submission:
        status = answer.get("status")
        progress = answer.get("progress")
        fraction = progress / 100 if isinstance(progress, int | float) else None
        if status in {"queued", "in_progress"}:
            return Submission(state="pending", job_id=job_id, poll_after=VIDEO_POLL_SECONDS, progress=fraction)
        if status == "failed":
            error = answer.get("error") or {}
            code = str(error.get("code") or "")
            message = str(error.get("message") or "")[:300]
            if code in POLICY_CODES or "moderation" in code or "policy" in message.lower():
                raise ProviderPolicyError(f"openai: video refused ({code})")
            raise ProviderError(f"openai: video failed ({code}): {message}")
        if status != "completed":
            raise malformed(VENDOR, f"unknown video status {status!r}")
        client = self._client()
        try:
            content = client.videos.download_content(job_id, variant="video")
            data = content.read()
        except Exception as error:
            _translate(error, checking=True)
            raise
        if len(data) > MAX_MEDIA_BYTES:
            raise ProviderError("openai: the video is larger than the media limit", code="result_invalid")
        content_type = media_download.content_type_of(data, wanted=("video/mp4",))
        result = MediaResult(data=data, content_type=content_type, filename=f"nanobanana-{job.request_id}.mp4")
        return Submission(state="succeeded", job_id=job_id, results=(result,), progress=1.0)

    def _client(self) -> openai.OpenAI:
        key = env("OPENAI_API_KEY")
        if not key:
            raise ProviderError("openai: no OPENAI_API_KEY", code="provider_unavailable")
        return openai.OpenAI(
            api_key=key,
            max_retries=0,
            timeout=httpx2.Timeout(connect=TIMEOUT.connect, read=TIMEOUT.read, write=TIMEOUT.write, pool=TIMEOUT.pool),
            http_client=self._http,
        )


def _translate(error: Exception, *, checking: bool) -> None:
    raise_for_time_limit(vendor=VENDOR, error=error)
    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        detail = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
        code = str(detail.get("code") or "")
        message = str(detail.get("message") or "")[:300]
        policy = code in POLICY_CODES or (error.status_code == 400 and "safety system" in message.lower())
        raise_for_http(
            vendor=VENDOR,
            status=error.status_code,
            headers=dict(error.response.headers),
            message=f"{code} {message}".strip(),
            policy=policy,
            checking=checking,
        )
    if isinstance(error, openai.APITimeoutError | openai.APIConnectionError):
        raise_for_transport(vendor=VENDOR, error=error)
    if not isinstance(error, AppError):
        # Only the SDK call ran in the guarded block: anything else it raised
        # comes from an answer it could not parse.
        raise malformed(VENDOR, type(error).__name__) from error
