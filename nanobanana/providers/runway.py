"""Runway image-to-video through the official `runwayml` SDK, with
`RUNWAYML_API_SECRET`.

`image_to_video.create` takes the start frame as a data URI and returns a
task id; `tasks.retrieve` reports `PENDING`, `THROTTLED`, `RUNNING`,
`SUCCEEDED` (with output URLs), `FAILED` (with a `failureCode`; codes
starting with `SAFETY.` are moderation refusals) or `CANCELLED`;
`tasks.delete` cancels. The SDK's own retries are off (they sleep).
"""

from __future__ import annotations

from typing import Any

import httpx
import runwayml

from nanobanana.core.errors import AppError, ProviderError, ProviderJobLost, ProviderPolicyError
from nanobanana.media import download as media_download
from nanobanana.media.storage import MAX_MEDIA_BYTES
from nanobanana.providers.base import Capabilities, GenerationJob, MediaResult, Submission
from nanobanana.providers.common import (
    TIMEOUT,
    choice,
    data_uri,
    env,
    malformed,
    raise_for_http,
    raise_for_time_limit,
    raise_for_transport,
)

VENDOR = "runway"
POLL_SECONDS = 6.0  # Runway asks for no more than one status call per five seconds
RESULT_HOSTS = ("runwayml.com", "dnznrvs05pmza.cloudfront.net")
RATIOS = {"16:9": "1280:720", "9:16": "720:1280", "4:3": "1104:832", "3:4": "832:1104", "1:1": "960:960"}
DURATIONS = {5: 5, 10: 10}
PENDING = frozenset({"PENDING", "THROTTLED", "RUNNING"})


class RunwayProvider:
    """Runway image to video; see the module docstring."""

    name = VENDOR
    capabilities = Capabilities(kinds=frozenset({"video"}), supports_cancel=True, max_input_images=1)

    def __init__(self, *, http_client: httpx.Client | None = None) -> None:
        self._http = http_client

    def is_configured(self) -> bool:
        return bool(env("RUNWAYML_API_SECRET"))

    def submit(self, job: GenerationJob) -> Submission:
        if job.kind != "video" or len(job.input_images) != 1:
            raise ProviderError("runway: a video from exactly one start image", code="invalid_input")
        client = self._client()
        try:
            arguments: dict[str, Any] = {
                "model": job.model,
                "prompt_image": data_uri(job.input_images[0]),
                "prompt_text": job.prompt,
                "ratio": choice(job.params, "aspect_ratio", RATIOS, "16:9"),
                "duration": choice(job.params, "duration", DURATIONS, 5),
            }
            task = client.image_to_video.create(**arguments)
        except Exception as error:
            _translate(error, checking=False)
            raise
        task_id = getattr(task, "id", None)
        if not isinstance(task_id, str) or not task_id:
            raise malformed(VENDOR, "task without an id")
        return Submission(state="pending", job_id=task_id, poll_after=POLL_SECONDS, progress=0.0)

    def check(self, job: GenerationJob, job_id: str) -> Submission:
        client = self._client()
        try:
            answer: dict[str, Any] = client.tasks.retrieve(job_id).model_dump(by_alias=True)
        except Exception as error:
            _translate(error, checking=True)
            raise
        status = answer.get("status")
        if status in PENDING:
            progress = answer.get("progress")
            fraction = float(progress) if isinstance(progress, int | float) else None
            return Submission(state="pending", job_id=job_id, poll_after=POLL_SECONDS, progress=fraction)
        if status == "FAILED":
            code = str(answer.get("failureCode") or "")
            if code.startswith("SAFETY"):
                raise ProviderPolicyError(f"runway: refused ({code})")
            raise ProviderError(f"runway: task failed ({code or 'no code'})")
        if status == "CANCELLED":
            raise ProviderJobLost("runway: the task was cancelled at the vendor")
        if status != "SUCCEEDED":
            raise malformed(VENDOR, f"unknown task status {status!r}")
        output = answer.get("output")
        if not isinstance(output, list) or not output or not isinstance(output[0], str):
            raise malformed(VENDOR, "succeeded task without output")
        fetched = media_download.download(
            url=output[0],
            allowed_hosts=RESULT_HOSTS,
            types=("video/mp4",),
            max_bytes=MAX_MEDIA_BYTES,
            client=self._http,
        )
        media = MediaResult(
            data=fetched.data, content_type=fetched.content_type, filename=f"nanobanana-{job.request_id}.mp4"
        )
        return Submission(state="succeeded", job_id=job_id, results=(media,), progress=1.0)

    def cancel(self, job_id: str) -> None:
        try:
            self._client().tasks.delete(job_id)
        except runwayml.NotFoundError:
            return

    def _client(self) -> runwayml.RunwayML:
        secret = env("RUNWAYML_API_SECRET")
        if not secret:
            raise ProviderError("runway: no RUNWAYML_API_SECRET", code="provider_unavailable")
        return runwayml.RunwayML(api_key=secret, max_retries=0, timeout=TIMEOUT, http_client=self._http)


def _translate(error: Exception, *, checking: bool) -> None:
    raise_for_time_limit(vendor=VENDOR, error=error)
    if isinstance(error, runwayml.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        message = str(body.get("error") or "")[:300]
        policy = error.status_code == 400 and ("moderation" in message.lower() or "safety" in message.lower())
        raise_for_http(
            vendor=VENDOR,
            status=error.status_code,
            headers=error.response.headers,
            message=message,
            policy=policy,
            checking=checking,
        )
    if isinstance(error, runwayml.APITimeoutError | runwayml.APIConnectionError):
        raise_for_transport(vendor=VENDOR, error=error)
    if not isinstance(error, AppError):
        # Only the SDK call ran in the guarded block: anything else it raised
        # comes from an answer it could not parse.
        raise malformed(VENDOR, type(error).__name__) from error
