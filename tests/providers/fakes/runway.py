"""A fake of Runway's API as documented:

- bearer auth plus the `X-Runway-Version` header;
- `POST /v1/image_to_video` `{model, promptImage, promptText, ratio,
  duration}` answers `{id}`; a refused input is a 400 `{error}`;
- `GET /v1/tasks/{id}` moves through `PENDING`/`RUNNING` (with `progress`) to
  `SUCCEEDED` with `output: [url]`, or `FAILED` with `failure` and
  `failureCode` (`SAFETY.*` for moderation); unknown ids are 404;
- `DELETE /v1/tasks/{id}` cancels (204);
- 429 and 502-504 are retryable.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.providers.fakes.base import RETRY_AFTER, Call, FakeTimeout, FakeVendor, Reply, sample_mp4

API_HOST = "api.dev.runwayml.com"
CDN_HOST = "dnznrvs05pmza.cloudfront.net"


def error(status: int, message: str, **headers: str) -> Reply:
    return Reply.of_json(status, {"error": message}, **headers)


@dataclass
class FakeRunway(FakeVendor):
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_checks: int = 1
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    video: bytes = field(default_factory=sample_mp4)
    cancelled: list[str] = field(default_factory=list)

    def handle(self, call: Call) -> Reply:
        if call.host == CDN_HOST:
            return Reply(200, self.video, {"content-type": "video/mp4"})
        if call.headers.get("authorization") != "Bearer key_test" or not call.headers.get("x-runway-version"):
            return error(401, "Invalid API key")
        if call.method == "POST" and call.path == "/v1/image_to_video":
            return self._create(call)
        if call.path.startswith("/v1/tasks/"):
            task_id = call.path.removeprefix("/v1/tasks/")
            if call.method == "DELETE":
                return self._delete(task_id)
            if call.method == "GET":
                return self._retrieve(task_id)
        return error(404, "Not found")

    def _common_failure(self, scenario: str) -> Reply | None:
        if scenario == "rate_limited":
            return error(429, "Too many requests", **{"retry-after": str(RETRY_AFTER)})
        if scenario == "server_error":
            return error(503, "Shedding load")
        if scenario == "timeout":
            raise FakeTimeout
        return None

    def _create(self, call: Call) -> Reply:
        scenario = self.failing("submit")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        body = call.json()
        image = body.get("promptImage", "")
        if not isinstance(image, str) or not image.startswith("data:image/") or body.get("ratio") is None:
            return error(400, "promptImage must be an HTTPS URL or a data URI")
        if scenario == "policy":
            return error(400, "Your prompt failed content moderation.")
        if scenario == "malformed":
            return Reply.of_json(200, {"taskId": None})
        task_id = str(uuid.UUID(int=next(self.counter)))
        self.tasks[task_id] = {"checks_left": self.pending_checks}
        return Reply.of_json(200, {"id": task_id})

    def _retrieve(self, task_id: str) -> Reply:
        scenario = self.failing("check")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        task = self.tasks.get(task_id)
        if scenario == "lost" or task is None:
            return error(404, "Task not found")
        base = {"id": task_id, "createdAt": "2030-01-15T12:00:00.000Z"}
        if task["checks_left"] > 0:
            task["checks_left"] -= 1
            return Reply.of_json(200, {**base, "status": "RUNNING", "progress": 0.4})
        if scenario == "policy":
            return Reply.of_json(
                200, {**base, "status": "FAILED", "failure": "Content moderation", "failureCode": "SAFETY.INPUT.TEXT"}
            )
        if scenario == "malformed":
            return Reply.of_json(200, {**base, "status": "SUCCEEDED", "output": []})
        return Reply.of_json(200, {**base, "status": "SUCCEEDED", "output": [f"https://{CDN_HOST}/out/{task_id}.mp4"]})

    def _delete(self, task_id: str) -> Reply:
        if task_id not in self.tasks:
            return error(404, "Task not found")
        self.cancelled.append(task_id)
        del self.tasks[task_id]
        return Reply(204)
