"""Google: Gemini image models ("Nano Banana", "Nano Banana Pro") and Veo
video models, through the official `google-genai` SDK.

Two modes, chosen from the environment:

- Gemini API: `GEMINI_API_KEY`;
- Vertex AI: `USE_VERTEX_AI` with `GOOGLE_APPLICATION_CREDENTIALS`,
  `GOOGLE_CLOUD_PROJECT` and `GOOGLE_CLOUD_LOCATION`.

Images are synchronous (`generate_content`, one image per call, so `count`
images are `count` calls in one `submit`). Videos are long-running
operations: `submit` starts one and returns its name; `check` asks for it.
The SDK retries nothing by default, and nothing here sleeps.
"""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from nanobanana.core.errors import AppError, ProviderError, ProviderJobLost, ProviderPolicyError
from nanobanana.media import download as media_download
from nanobanana.media.storage import MAX_MEDIA_BYTES
from nanobanana.providers.base import Capabilities, GenerationJob, MediaResult, Submission
from nanobanana.providers.common import (
    TIMEOUT,
    choice,
    env,
    env_flag,
    malformed,
    positive_int,
    raise_for_http,
    raise_for_time_limit,
    raise_for_transport,
    request_json,
    sniff_image_type,
)

logger = logging.getLogger(__name__)

VENDOR = "gemini"
MAX_IMAGES = 4
MAX_INPUT_IMAGES = 14
VIDEO_POLL_SECONDS = 10.0
GEMINI_API_BASE = "https://generativelanguage.googleapis.com"
# Where Gemini API video files are served from (Vertex returns bytes).
RESULT_HOSTS = ("generativelanguage.googleapis.com",)
ASPECT_RATIOS = {ratio: ratio for ratio in ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")}
IMAGE_SIZES = {"1K": "1K", "2K": "2K", "4K": "4K"}
VIDEO_ASPECT_RATIOS = {"16:9": "16:9", "9:16": "9:16"}
VIDEO_RESOLUTIONS = {"720p": "720p", "1080p": "1080p"}
POLICY_FINISH_REASONS = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "RECITATION"}
)
POLICY_STATUSES = frozenset({"INVALID_ARGUMENT"})


def vertex_configured() -> bool:
    credentials = env("GOOGLE_APPLICATION_CREDENTIALS")
    return (
        env_flag("USE_VERTEX_AI")
        and bool(credentials)
        and os.path.isfile(credentials)
        and bool(env("GOOGLE_CLOUD_PROJECT"))
        and bool(env("GOOGLE_CLOUD_LOCATION"))
    )


class GeminiProvider:
    """Gemini images and Veo videos; see the module docstring."""

    name = VENDOR
    capabilities = Capabilities(kinds=frozenset({"image", "video"}), supports_cancel=False, max_input_images=14)

    def __init__(self, *, http_client: httpx.Client | None = None) -> None:
        self._http = http_client

    def is_configured(self) -> bool:
        return bool(env("GEMINI_API_KEY")) or vertex_configured()

    # --- The protocol -------------------------------------------------------------

    def submit(self, job: GenerationJob) -> Submission:
        if job.kind == "image":
            return self._images(job)
        return self._start_video(job)

    def check(self, job: GenerationJob, job_id: str) -> Submission:
        if job.kind != "video":
            raise ProviderJobLost("gemini: image jobs finish at submit")
        client = self._client()
        try:
            operation = client.operations.get(types.GenerateVideosOperation.model_validate({"name": job_id}))
        except Exception as error:
            _translate(error, checking=True)
            raise
        return self._video_result(job, job_id=job_id, operation=operation)

    def cancel(self, job_id: str) -> None:
        """The Gemini API has no cancel for video operations."""

    # --- Images -------------------------------------------------------------------

    def _images(self, job: GenerationJob) -> Submission:
        count = positive_int(job.params, "count", 1, maximum=MAX_IMAGES)
        if len(job.input_images) > MAX_INPUT_IMAGES:
            raise ProviderError(f"gemini: at most {MAX_INPUT_IMAGES} reference images", code="invalid_input")
        image_config: dict[str, Any] = {"aspect_ratio": choice(job.params, "aspect_ratio", ASPECT_RATIOS, "1:1")}
        if "image_size" in job.params:
            image_config["image_size"] = choice(job.params, "image_size", IMAGE_SIZES, "1K")
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=types.ImageConfig(**image_config)
        )
        contents: list[Any] = [
            types.Part.from_bytes(data=data, mime_type=sniff_image_type(data)) for data in job.input_images
        ]
        contents.append(job.prompt)
        client = self._client()
        results: list[MediaResult] = []
        for index in range(count):
            try:
                response = client.models.generate_content(model=job.model, contents=contents, config=config)
                results.append(_image_from(response, filename=f"nanobanana-{job.request_id}-{index + 1}"))
            except Exception as error:
                if results:
                    # Keep what was made; the engine charges only for it.
                    logger.warning("gemini: stopped after %s of %s images", len(results), count, exc_info=True)
                    break
                _translate(error, checking=False)
                raise
        return Submission(state="succeeded", job_id=f"gemini-image-{job.request_id}", results=tuple(results))

    # --- Videos -------------------------------------------------------------------

    def _start_video(self, job: GenerationJob) -> Submission:
        config: dict[str, Any] = {
            "number_of_videos": 1,
            "aspect_ratio": choice(job.params, "aspect_ratio", VIDEO_ASPECT_RATIOS, "16:9"),
        }
        if "duration" in job.params:
            config["duration_seconds"] = positive_int(job.params, "duration", 8, maximum=8)
        if "resolution" in job.params:
            config["resolution"] = choice(job.params, "resolution", VIDEO_RESOLUTIONS, "720p")
        if len(job.input_images) > 2:
            raise ProviderError("gemini: at most a start and an end frame", code="invalid_input")
        if env("GEMINI_API_KEY"):
            name = self._start_video_gemini_api(job, config)
        else:
            name = self._start_video_vertex(job, config)
        return Submission(state="pending", job_id=name, poll_after=VIDEO_POLL_SECONDS, progress=0.0)

    def _start_video_vertex(self, job: GenerationJob, config: dict[str, Any]) -> str:
        """Vertex AI: the SDK's `generate_videos`."""
        if "sound" in job.params:
            config["generate_audio"] = bool(job.params["sound"])
        if len(job.input_images) == 2:
            config["last_frame"] = _image(job.input_images[1])
        source = types.GenerateVideosSource(
            prompt=job.prompt, image=_image(job.input_images[0]) if job.input_images else None
        )
        try:
            operation = self._client().models.generate_videos(
                model=job.model, source=source, config=types.GenerateVideosConfig(**config)
            )
        except Exception as error:
            _translate(error, checking=False)
            raise
        if not operation.name:
            raise malformed(VENDOR, "operation without a name")
        return operation.name

    def _start_video_gemini_api(self, job: GenerationJob, config: dict[str, Any]) -> str:
        """Gemini API (key): the SDK starts Veo jobs only on Vertex AI, so this
        posts the documented `models/{model}:predictLongRunning` body itself.
        The operation is then read back through the SDK like any other."""
        instance: dict[str, Any] = {"prompt": job.prompt}
        if job.input_images:
            instance["image"] = _wire_image(job.input_images[0])
        if len(job.input_images) == 2:
            instance["lastFrame"] = _wire_image(job.input_images[1])
        parameters: dict[str, Any] = {"aspectRatio": config["aspect_ratio"]}
        if "duration_seconds" in config:
            parameters["durationSeconds"] = config["duration_seconds"]
        if "resolution" in config:
            parameters["resolution"] = config["resolution"]
        url = f"{GEMINI_API_BASE}/v1beta/models/{job.model}:predictLongRunning"
        response, answer = request_json(
            vendor=VENDOR,
            client=self._http,
            method="POST",
            url=url,
            json={"instances": [instance], "parameters": parameters},
            headers={"x-goog-api-key": env("GEMINI_API_KEY")},
        )
        if response.status_code != 200:
            detail = answer.get("error", {}) if isinstance(answer, dict) else {}
            message = str(detail.get("message", "") if isinstance(detail, dict) else "")[:300]
            lowered = message.lower()
            raise_for_http(
                vendor=VENDOR,
                status=response.status_code,
                headers=response.headers,
                message=message,
                policy=response.status_code == 400 and ("safety" in lowered or "blocked" in lowered),
            )
        name = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name:
            raise malformed(VENDOR, "operation without a name")
        return name

    def _video_result(self, job: GenerationJob, *, job_id: str, operation: types.GenerateVideosOperation) -> Submission:
        if operation.error:
            message = str(operation.error.get("message", ""))[:300]
            status = operation.error.get("code")
            if status == 3 or "safety" in message.lower() or "policy" in message.lower():
                raise ProviderPolicyError(f"gemini: video refused: {message}")
            raise ProviderError(f"gemini: video failed ({status}): {message}")
        if not operation.done:
            return Submission(state="pending", job_id=job_id, poll_after=VIDEO_POLL_SECONDS)
        response = operation.response
        videos = (response.generated_videos or []) if response else []
        if not videos:
            if response and response.rai_media_filtered_count:
                raise ProviderPolicyError("gemini: the video was filtered by the safety rules")
            raise malformed(VENDOR, "finished operation without a video")
        video = videos[0].video
        if video is None:
            raise malformed(VENDOR, "generated video without a file")
        if video.video_bytes:
            data = video.video_bytes
            content_type = media_download.content_type_of(data, wanted=("video/mp4",))
        elif video.uri:
            headers = {"x-goog-api-key": env("GEMINI_API_KEY")} if env("GEMINI_API_KEY") else {}
            fetched = media_download.download(
                url=video.uri,
                allowed_hosts=RESULT_HOSTS,
                types=("video/mp4",),
                max_bytes=MAX_MEDIA_BYTES,
                client=self._http,
                headers=headers,
            )
            data, content_type = fetched.data, fetched.content_type
        else:
            raise malformed(VENDOR, "generated video with neither bytes nor a URI")
        result = MediaResult(data=data, content_type=content_type, filename=f"nanobanana-{job.request_id}.mp4")
        return Submission(state="succeeded", job_id=job_id, results=(result,), progress=1.0)

    # --- Plumbing -------------------------------------------------------------------

    def _client(self) -> genai.Client:
        options = types.HttpOptions(timeout=int(TIMEOUT.read * 1000) if TIMEOUT.read else None)
        if self._http is not None:
            options.httpx_client = self._http
        if env("GEMINI_API_KEY"):
            return genai.Client(api_key=env("GEMINI_API_KEY"), http_options=options)
        if vertex_configured():
            return genai.Client(
                vertexai=True,
                project=env("GOOGLE_CLOUD_PROJECT"),
                location=env("GOOGLE_CLOUD_LOCATION"),
                http_options=options,
            )
        raise ProviderError("gemini: no GEMINI_API_KEY and no Vertex AI settings", code="provider_unavailable")


def _wire_image(data: bytes) -> dict[str, str]:
    return {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": sniff_image_type(data)}


def _image(data: bytes) -> types.Image:
    return types.Image(image_bytes=data, mime_type=sniff_image_type(data))


def _image_from(response: types.GenerateContentResponse, *, filename: str) -> MediaResult:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        raise ProviderPolicyError(f"gemini: prompt blocked ({feedback.block_reason})")
    candidates = response.candidates or []
    if not candidates:
        raise malformed(VENDOR, "no candidates")
    candidate = candidates[0]
    reason = str(getattr(candidate.finish_reason, "value", candidate.finish_reason or ""))
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    for part in parts:
        inline = part.inline_data
        if inline is not None and inline.data:
            content_type = media_download.content_type_of(inline.data, wanted=("image/png", "image/jpeg", "image/webp"))
            extension = content_type.rsplit("/", 1)[-1]
            return MediaResult(data=inline.data, content_type=content_type, filename=f"{filename}.{extension}")
    if reason in POLICY_FINISH_REASONS:
        raise ProviderPolicyError(f"gemini: no image, finish reason {reason}")
    if reason in {"NO_IMAGE", "IMAGE_OTHER"} or any(part.text for part in parts):
        # The model answered in words instead of drawing: a refusal in practice.
        raise ProviderPolicyError(f"gemini: the model declined to draw (finish reason {reason or 'none'})")
    raise malformed(VENDOR, f"no image in the answer (finish reason {reason or 'none'})")


def _translate(error: Exception, *, checking: bool) -> None:
    """Raise our error for an SDK or transport failure; return for anything else."""
    raise_for_time_limit(vendor=VENDOR, error=error)
    if isinstance(error, genai_errors.APIError):
        status = str(error.status or "")
        message = str(error.message or "")[:300]
        policy = error.code == 400 and ("safety" in message.lower() or "blocked" in message.lower())
        headers = error.response.headers if isinstance(error.response, httpx.Response) else None
        raise_for_http(
            vendor=VENDOR,
            status=int(error.code or 500),
            headers=headers,
            message=f"{status} {message}",
            policy=policy,
            checking=checking,
        )
    if isinstance(error, httpx.TransportError):
        raise_for_transport(vendor=VENDOR, error=error)
    if not isinstance(error, AppError):
        # Only the SDK call ran in the guarded block: anything else it raised
        # comes from an answer it could not parse.
        raise malformed(VENDOR, type(error).__name__) from error
