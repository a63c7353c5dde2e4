"""A fake of OpenAI's Images and Videos APIs as documented:

- `POST /v1/images/generations` (JSON) and `POST /v1/images/edits`
  (multipart, `image[]` files) answer `{created, data: [{b64_json}]}`; a
  refusal is a 400 whose error code is `moderation_blocked`;
- `POST /v1/videos` answers a video object `{id: "video_…", object: "video",
  status: "queued", progress}`; `GET /v1/videos/{id}` moves it through
  `in_progress` to `completed` (or `failed` with `error {code, message}`);
  `GET /v1/videos/{id}/content` serves the MP4; `DELETE /v1/videos/{id}`
  removes it;
- errors are `{"error": {message, type, param, code}}`, bearer auth.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.providers.fakes.base import RETRY_AFTER, Call, FakeTimeout, FakeVendor, Reply, sample_mp4, sample_png

HOST = "api.openai.com"


def error(status: int, message: str, code: str | None = None, kind: str = "invalid_request_error", **headers: str):
    return Reply.of_json(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, **headers)


@dataclass
class FakeOpenAI(FakeVendor):
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_checks: int = 1
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    image: bytes = field(default_factory=sample_png)
    video: bytes = field(default_factory=sample_mp4)
    deleted: list[str] = field(default_factory=list)

    def handle(self, call: Call) -> Reply:
        if call.headers.get("authorization") != "Bearer sk-test":  # pragma: allowlist secret
            return error(401, "Incorrect API key provided", "invalid_api_key")
        path = call.path
        if call.method == "POST" and path in {"/v1/images/generations", "/v1/images/edits"}:
            return self._images(call)
        if call.method == "POST" and path == "/v1/videos":
            return self._create_video(call)
        if path.startswith("/v1/videos/"):
            video_id, _, rest = path.removeprefix("/v1/videos/").partition("/")
            if call.method == "DELETE":
                return self._delete(video_id)
            if call.method == "GET" and rest == "content":
                return Reply(200, self.video, {"content-type": "video/mp4"})
            if call.method == "GET" and not rest:
                return self._retrieve(video_id)
        return error(404, f"no route {call.method} {path}")

    def _common_failure(self, scenario: str) -> Reply | None:
        if scenario == "rate_limited":
            return error(
                429, "Rate limit reached", "rate_limit_exceeded", "requests", **{"retry-after": str(RETRY_AFTER)}
            )
        if scenario == "server_error":
            return error(500, "The server had an error", None, "server_error")
        if scenario == "timeout":
            raise FakeTimeout
        return None

    def _images(self, call: Call) -> Reply:
        scenario = self.failing("submit")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        if call.path.endswith("/edits"):
            if b'name="image[]"' not in call.body and b'name="image"' not in call.body:
                return error(400, "image is required", "missing_required_parameter")
            count = 1
        else:
            body = call.json()
            if not body.get("prompt") or body.get("size") not in {"1024x1024", "1536x1024", "1024x1536", "auto"}:
                return error(400, "Invalid size", "invalid_value")
            count = int(body.get("n", 1))
        if scenario == "policy":
            return error(400, "Your request was rejected by the safety system.", "moderation_blocked")
        if scenario == "malformed":
            return Reply.of_json(200, {"created": 1, "data": [{"url": None}]})
        item = {"b64_json": base64.b64encode(self.image).decode()}
        return Reply.of_json(200, {"created": 1700000000, "data": [item] * count})

    def _create_video(self, call: Call) -> Reply:
        scenario = self.failing("submit")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        if scenario == "malformed":
            return Reply.of_json(200, {"object": "video", "status": "queued"})
        video_id = f"video_{next(self.counter):04d}"
        self.videos[video_id] = {
            "id": video_id,
            "object": "video",
            "model": "sora-2",
            "status": "queued",
            "progress": 0,
            "created_at": 1700000000,
            "size": "1280x720",
            "seconds": "4",
            "checks_left": self.pending_checks,
        }
        return Reply.of_json(200, self._public(video_id))

    def _public(self, video_id: str) -> dict[str, Any]:
        return {key: value for key, value in self.videos[video_id].items() if key != "checks_left"}

    def _retrieve(self, video_id: str) -> Reply:
        scenario = self.failing("check")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        if scenario == "lost" or video_id not in self.videos:
            return error(404, "Video not found")
        video = self.videos[video_id]
        if video["checks_left"] > 0:
            video["checks_left"] -= 1
            video.update(status="in_progress", progress=50)
            return Reply.of_json(200, self._public(video_id))
        if scenario == "policy":
            video.update(
                status="failed", error={"code": "moderation_blocked", "message": "Blocked by our moderation system"}
            )
        elif scenario == "malformed":
            video.update(status="exploded")
        else:
            video.update(status="completed", progress=100, completed_at=1700000100)
        return Reply.of_json(200, self._public(video_id))

    def _delete(self, video_id: str) -> Reply:
        if video_id not in self.videos:
            return error(404, "Video not found")
        del self.videos[video_id]
        self.deleted.append(video_id)
        return Reply.of_json(200, {"id": video_id, "object": "video.deleted", "deleted": True})
