"""A fake of Kling's official API as documented:

- bearer JWT (HS256, `iss` = access key, `exp`, `nbf`) signed with the
  secret key; anything else is 401 with business code 1000-range;
- `POST /v1/videos/text2video` and `POST /v1/videos/image2video` (base64
  `image`, optional `image_tail`) answer the envelope
  `{code: 0, message, request_id, data: {task_id, task_status: "submitted"}}`;
- `GET /v1/videos/{text2video|image2video}/{task_id}` moves the task through
  `processing` to `succeed` with `task_result.videos[{id, url, duration}]`,
  or `failed` with `task_status_msg`;
- `GET /v1/videos/{text2video|image2video}?pageNum=&pageSize=` lists that
  endpoint's tasks newest first (`pageSize` 1-500, `pageNum` 1-1000), each
  as the query shows it;
- errors keep the envelope with a non-zero `code`: 1301 content security
  (policy), 1302 rate limit (HTTP 429), 5000 internal error (HTTP 500).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt

from nanobanana.core import clock
from tests.providers.fakes.base import RETRY_AFTER, Call, FakeTimeout, FakeVendor, Reply, sample_mp4

API_HOST = "api-singapore.klingai.com"
CDN_HOST = "cdn.klingai.com"
ACCESS_KEY = "ak-test"
SECRET_KEY = "sk-test-kling-secret-key-32-bytes!"  # pragma: allowlist secret


def envelope(status: int, code: int, message: str, data: Any = None, **headers: str) -> Reply:
    return Reply.of_json(status, {"code": code, "message": message, "request_id": "req-1", "data": data}, **headers)


@dataclass
class FakeKling(FakeVendor):
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_checks: int = 1
    counter: itertools.count = field(default_factory=lambda: itertools.count(1000))
    video: bytes = field(default_factory=sample_mp4)
    cdn_host: str = CDN_HOST
    result_url: str = ""  # the URL a finished task names; the CDN's by default
    latency_seconds: float = 0.0  # with latency, a task is ready that long after creation (core clock)

    def handle(self, call: Call) -> Reply:
        if call.host == self.cdn_host:
            return Reply(200, self.video, {"content-type": "video/mp4"})
        token = call.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
        except jwt.PyJWTError:
            return envelope(401, 1004, "Authorization is invalid")
        if claims.get("iss") != ACCESS_KEY or "exp" not in claims or "nbf" not in claims:
            return envelope(401, 1004, "Authorization is invalid")
        parts = call.path.strip("/").split("/")
        if call.method == "POST" and parts[:2] == ["v1", "videos"] and len(parts) == 3:
            return self._create(call, parts[2])
        if call.method == "GET" and parts[:2] == ["v1", "videos"] and len(parts) == 4:
            return self._query(parts[2], parts[3])
        if call.method == "GET" and parts[:2] == ["v1", "videos"] and len(parts) == 3:
            return self._list(call, parts[2])
        return envelope(404, 1203, "resource not found")

    def _common_failure(self, scenario: str) -> Reply | None:
        if scenario == "rate_limited":
            return envelope(429, 1302, "rate limit exceeded", **{"retry-after": str(RETRY_AFTER)})
        if scenario == "server_error":
            return envelope(500, 5000, "server internal error")
        if scenario == "timeout":
            raise FakeTimeout
        return None

    def _create(self, call: Call, endpoint: str) -> Reply:
        scenario = self.failing("submit")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        body = call.json()
        if endpoint not in {"text2video", "image2video"} or not body.get("model_name"):
            return envelope(400, 1201, "invalid request parameters")
        if endpoint == "image2video" and not body.get("image"):
            return envelope(400, 1201, "image is required")
        if body.get("duration") not in {"5", "10"} or body.get("mode") not in {"std", "pro"}:
            return envelope(400, 1201, "invalid duration or mode")
        if scenario == "policy":
            return envelope(400, 1301, "Trigger the content security policy of the platform")
        if scenario == "malformed":
            return envelope(200, 0, "SUCCEED", {"task_status": "submitted"})
        task_id = str(next(self.counter))
        ready_at = clock.now() + timedelta(seconds=self.latency_seconds)
        self.tasks[task_id] = {"endpoint": endpoint, "checks_left": self.pending_checks, "ready_at": ready_at}
        return envelope(200, 0, "SUCCEED", {"task_id": task_id, "task_status": "submitted", "created_at": 1})

    def _query(self, endpoint: str, task_id: str) -> Reply:
        scenario = self.failing("check")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        task = self.tasks.get(task_id)
        if scenario == "lost" or task is None or task["endpoint"] != endpoint:
            return envelope(404, 1203, "task not found")
        return envelope(200, 0, "SUCCEED", self._task(task_id, task, scenario=scenario, advance=True))

    def _list(self, call: Call, endpoint: str) -> Reply:
        failure = self._common_failure(self.failing("list"))
        if failure is not None:
            return failure
        try:
            page = int(call.query.get("pageNum", ["1"])[0])
            size = int(call.query.get("pageSize", ["30"])[0])
        except ValueError:
            return envelope(400, 1201, "invalid request parameters")
        if not (1 <= page <= 1000 and 1 <= size <= 500) or endpoint not in {"text2video", "image2video"}:
            return envelope(400, 1201, "invalid request parameters")
        newest_first = sorted((int(k) for k, task in self.tasks.items() if task["endpoint"] == endpoint), reverse=True)
        chosen = newest_first[(page - 1) * size : page * size]
        listed = [
            self._task(str(task_id), self.tasks[str(task_id)], scenario="success", advance=True) for task_id in chosen
        ]
        return envelope(200, 0, "SUCCEED", listed)

    def _task(self, task_id: str, task: dict[str, Any], *, scenario: str, advance: bool) -> dict[str, Any]:
        """The task as Kling shows it. Without latency a task moves on as it is
        looked at: each query or listing (`advance`) uses up a pending check."""
        data: dict[str, Any] = {"task_id": task_id, "created_at": 1, "updated_at": 2}
        if self.latency_seconds and clock.now() < task["ready_at"]:
            return {**data, "task_status": "processing"}
        if not self.latency_seconds and task["checks_left"] > 0:
            if advance:
                task["checks_left"] -= 1
            return {**data, "task_status": "processing"}
        if scenario == "policy":
            return {**data, "task_status": "failed", "task_status_msg": "Failure to pass the risk control system"}
        if scenario == "malformed":
            return {**data, "task_status": "succeed", "task_result": {}}
        url = self.result_url or f"https://{self.cdn_host}/bs2/upload/{task_id}.mp4"
        video = {"id": f"v{task_id}", "url": url, "duration": "5.0"}
        return {**data, "task_status": "succeed", "task_result": {"videos": [video]}}
