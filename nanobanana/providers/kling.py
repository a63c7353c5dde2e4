"""Kling videos through its official HTTP API (no SDK): text to video, and
image to video with an optional tail (end) frame.

Auth is a short-lived JWT (HS256) signed with `KLING_SECRET_KEY`, whose
issuer is `KLING_ACCESS_KEY`, sent as a bearer token. Every answer is an
envelope `{code, message, request_id, data}` where `code` 0 means success;
tasks report `task_status` `submitted`, `processing`, `succeed` or `failed`,
and a finished task lists video URLs, fetched with the safe downloader.
Waiting jobs are checked together through the task lists
(`GET /v1/videos/{endpoint}?pageNum=&pageSize=`, up to 500 tasks a page).
Kling has no cancel.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import jwt

from nanobanana.core.errors import ProviderError, ProviderJobLost, ProviderPolicyError, ProviderTransientError
from nanobanana.media import download as media_download
from nanobanana.media.storage import MAX_MEDIA_BYTES
from nanobanana.providers.base import Capabilities, GenerationJob, MediaResult, Submission
from nanobanana.providers.common import (
    choice,
    env,
    malformed,
    raise_for_http,
    request_json,
    retry_after,
    sniff_image_type,
)

VENDOR = "kling"
DEFAULT_BASE_URL = "https://api-singapore.klingai.com"
RESULT_HOSTS = ("klingai.com", "kling.ai", "kuaishou.com")
POLL_SECONDS = 10.0
# A job the task list shows as running is asked about again sooner: a listing
# answers for up to LIST_PAGE_SIZE jobs in one call, so asking often costs
# calls per batch window, not per job, and a finished video is noticed about
# 2.5 s after it is ready on average instead of 5 s.
LIST_POLL_SECONDS = 5.0
LIST_PAGE_SIZE = 500  # the most Kling's task list gives in one page
LIST_MAX_PAGES = 10  # a job further back than this is asked about on its own
RUNNING = frozenset({"submitted", "processing"})
TOKEN_SECONDS = 1800
MODES = {"std": "std", "pro": "pro"}
DURATIONS = {5: "5", 10: "10"}
ASPECT_RATIOS = {"16:9": "16:9", "9:16": "9:16", "1:1": "1:1"}
CFG_SCALES = {value: value for value in (0.0, 0.25, 0.5, 0.75, 1.0)}
ENDPOINTS = ("text2video", "image2video")
# Kling's own business codes (the `code` field), by meaning.
POLICY_CODES = frozenset({1301})
TRANSIENT_CODES = frozenset({1302, 1303, 5000, 5001, 5002})
LOST_CODES = frozenset({1203})


class KlingProvider:
    """Kling text-to-video and image-to-video; see the module docstring."""

    name = VENDOR
    capabilities = Capabilities(kinds=frozenset({"video"}), supports_cancel=False, max_input_images=2)

    def __init__(self, *, http_client: httpx.Client | None = None) -> None:
        self._http = http_client

    def is_configured(self) -> bool:
        return bool(env("KLING_ACCESS_KEY")) and bool(env("KLING_SECRET_KEY"))

    def submit(self, job: GenerationJob) -> Submission:
        if job.kind != "video":
            raise ProviderError("kling: only videos", code="invalid_input")
        body: dict[str, Any] = {
            "model_name": job.model,
            "prompt": job.prompt,
            "mode": choice(job.params, "mode", MODES, "std"),
            "duration": choice(job.params, "duration", DURATIONS, 5),
            "cfg_scale": choice(job.params, "cfg_scale", CFG_SCALES, 0.5),
            "external_task_id": f"nanobanana-{job.request_id}",
        }
        if len(job.input_images) > 2:
            raise ProviderError("kling: a start frame and a tail frame at most", code="invalid_input")
        if job.input_images:
            endpoint = "image2video"
            body["image"] = _base64_image(job.input_images[0])
            if len(job.input_images) == 2:
                body["image_tail"] = _base64_image(job.input_images[1])
        else:
            endpoint = "text2video"
            body["aspect_ratio"] = choice(job.params, "aspect_ratio", ASPECT_RATIOS, "16:9")
        data = self._call("POST", f"/v1/videos/{endpoint}", json=body, checking=False)
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise malformed(VENDOR, "task without a task_id")
        return self._state(job, job_id=f"{endpoint}:{task_id}", data=data)

    def check(self, job: GenerationJob, job_id: str) -> Submission:
        endpoint, _, task_id = job_id.partition(":")
        if endpoint not in ENDPOINTS or not task_id:
            raise ProviderJobLost(f"kling: not a Kling job id: {job_id!r}")
        data = self._call("GET", f"/v1/videos/{endpoint}/{task_id}", checking=True)
        return self._state(job, job_id=job_id, data=data)

    def pending_among(self, job_ids: Sequence[str]) -> Mapping[str, Submission]:
        """The jobs Kling's task lists show as still running (see `PendingLister`).

        Lists are read newest first, a page at a time, until every job was
        seen or a page comes back short (or `LIST_MAX_PAGES`)."""
        wanted: dict[str, set[str]] = {}
        for job_id in job_ids:
            endpoint, _, task_id = job_id.partition(":")
            if endpoint in ENDPOINTS and task_id:
                wanted.setdefault(endpoint, set()).add(task_id)
        pending: dict[str, Submission] = {}
        for endpoint, unseen in wanted.items():
            for page in range(1, LIST_MAX_PAGES + 1):
                query = f"?pageNum={page}&pageSize={LIST_PAGE_SIZE}"
                tasks = self._envelope("GET", f"/v1/videos/{endpoint}{query}", checking=False)
                if not isinstance(tasks, list):
                    raise malformed(VENDOR, "task list is not a list")
                for task in tasks:
                    task_id = str(task.get("task_id")) if isinstance(task, dict) else ""
                    if task_id in unseen:
                        unseen.discard(task_id)
                        if task.get("task_status") in RUNNING:
                            job_id = f"{endpoint}:{task_id}"
                            pending[job_id] = Submission(state="pending", job_id=job_id, poll_after=LIST_POLL_SECONDS)
                if not unseen or len(tasks) < LIST_PAGE_SIZE:
                    break
        return pending

    def cancel(self, job_id: str) -> None:
        """Kling has no cancel."""

    # --- Plumbing -----------------------------------------------------------------

    def _state(self, job: GenerationJob, *, job_id: str, data: dict[str, Any]) -> Submission:
        status = data.get("task_status")
        if status in RUNNING:
            return Submission(state="pending", job_id=job_id, poll_after=POLL_SECONDS)
        if status == "failed":
            message = str(data.get("task_status_msg") or "")[:300]
            lowered = message.lower()
            if any(word in lowered for word in ("risk", "security", "policy", "sensitive", "inappropriate")):
                raise ProviderPolicyError(f"kling: refused: {message}")
            raise ProviderError(f"kling: task failed: {message}")
        if status != "succeed":
            raise malformed(VENDOR, f"unknown task_status {status!r}")
        result = data.get("task_result")
        videos = result.get("videos") if isinstance(result, dict) else None
        if not isinstance(videos, list) or not videos or not isinstance(videos[0], dict):
            raise malformed(VENDOR, "finished task without videos")
        url = videos[0].get("url")
        if not isinstance(url, str):
            raise malformed(VENDOR, "video without a url")
        fetched = media_download.download(
            url=url, allowed_hosts=RESULT_HOSTS, types=("video/mp4",), max_bytes=MAX_MEDIA_BYTES, client=self._http
        )
        media = MediaResult(
            data=fetched.data, content_type=fetched.content_type, filename=f"nanobanana-{job.request_id}.mp4"
        )
        return Submission(state="succeeded", job_id=job_id, results=(media,), progress=1.0)

    def _call(self, method: str, path: str, *, checking: bool, json: dict[str, Any] | None = None) -> dict[str, Any]:
        data = self._envelope(method, path, checking=checking, json=json)
        if not isinstance(data, dict):
            raise malformed(VENDOR, "envelope without data")
        return data

    def _envelope(self, method: str, path: str, *, checking: bool, json: dict[str, Any] | None = None) -> Any:
        """The `data` of a successful envelope; Kling's failures as our errors."""
        base = (env("KLING_API_BASE") or DEFAULT_BASE_URL).rstrip("/")
        headers = {"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"}
        response, envelope = request_json(
            vendor=VENDOR, client=self._http, method=method, url=base + path, json=json, headers=headers
        )
        code = envelope.get("code") if isinstance(envelope, dict) else None
        message = str(envelope.get("message") or "")[:300] if isinstance(envelope, dict) else ""
        if response.status_code != 200 or code != 0:
            if code in POLICY_CODES:
                raise ProviderPolicyError(f"kling: refused ({code}): {message}")
            if code in TRANSIENT_CODES:
                raise ProviderTransientError(f"kling: busy ({code})", retry_after=retry_after(response.headers))
            if checking and code in LOST_CODES:
                raise ProviderJobLost(f"kling: task not found ({code})")
            if response.status_code == 200:
                if envelope is None:
                    raise malformed(VENDOR, "answer is not JSON")
                raise ProviderError(f"kling: error {code}: {message}", code="invalid_input")
            raise_for_http(
                vendor=VENDOR,
                status=response.status_code,
                headers=response.headers,
                message=f"{code} {message}",
                checking=checking,
            )
        return envelope.get("data") if isinstance(envelope, dict) else None


def _token() -> str:
    access, secret = env("KLING_ACCESS_KEY"), env("KLING_SECRET_KEY")
    if not access or not secret:
        raise ProviderError("kling: no KLING_ACCESS_KEY / KLING_SECRET_KEY", code="provider_unavailable")
    now = int(time.time())
    return jwt.encode(
        {"iss": access, "exp": now + TOKEN_SECONDS, "nbf": now - 5},
        secret,
        algorithm="HS256",
        headers={"typ": "JWT"},
    )


def _base64_image(data: bytes) -> str:
    sniff_image_type(data)  # refuses anything that is not an image
    return base64.b64encode(data).decode()
