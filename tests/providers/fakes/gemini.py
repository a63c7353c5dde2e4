"""A fake of the Gemini API (generativelanguage v1beta) as documented:

- (paths under `/v1beta/` or `/v1/`; the SDK picks its API version)
- `POST /v1beta/models/{model}:generateContent` answers candidates whose
  parts carry `inlineData {mimeType, data(base64)}`; a refusal is a
  `promptFeedback.blockReason` or a candidate with `finishReason`
  `IMAGE_SAFETY` and no image;
- `POST /v1beta/models/{model}:predictLongRunning` starts a Veo operation
  `{name}`; `GET /v1beta/{name}` answers `{name, done, response:
  {generateVideoResponse: {generatedSamples: [{video: {uri}}]}}}`, or
  `raiMediaFilteredCount` when the safety filter removed the video;
- `GET /v1beta/files/{id}:download?alt=media` serves the MP4;
- errors are `{"error": {code, message, status}}`.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field

from tests.providers.fakes.base import RETRY_AFTER, Call, FakeTimeout, FakeVendor, Reply, sample_mp4, sample_png

HOST = "generativelanguage.googleapis.com"


def error(code: int, status: str, message: str, **headers: str) -> Reply:
    return Reply.of_json(code, {"error": {"code": code, "message": message, "status": status}}, **headers)


@dataclass
class FakeGemini(FakeVendor):
    operations: dict[str, int] = field(default_factory=dict)  # name -> checks left before done
    pending_checks: int = 1
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    image: bytes = field(default_factory=sample_png)
    video: bytes = field(default_factory=sample_mp4)

    def handle(self, call: Call) -> Reply:
        if call.headers.get("x-goog-api-key") != "test-gemini-key":  # pragma: allowlist secret
            return error(401, "UNAUTHENTICATED", "API key not valid")
        path = call.path
        if call.method == "POST" and path.endswith(":generateContent"):
            return self._generate(call)
        if call.method == "POST" and path.endswith(":predictLongRunning"):
            return self._start(call)
        if call.method == "GET" and "/operations/" in path:
            return self._operation(call)
        if call.method == "GET" and "/files/" in path and path.endswith(":download"):
            return Reply(200, self.video, {"content-type": "video/mp4"})
        return error(404, "NOT_FOUND", f"no route {call.method} {path}")

    def _common_failure(self, scenario: str) -> Reply | None:
        if scenario == "rate_limited":
            return error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", **{"retry-after": str(RETRY_AFTER)})
        if scenario == "server_error":
            return error(503, "UNAVAILABLE", "The model is overloaded")
        if scenario == "timeout":
            raise FakeTimeout
        return None

    def _generate(self, call: Call) -> Reply:
        scenario = self.failing("submit")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        body = call.json()
        if not body.get("contents") or body.get("generationConfig", {}).get("responseModalities") != ["IMAGE"]:
            return error(400, "INVALID_ARGUMENT", "contents and responseModalities are required")
        if scenario == "policy":
            return Reply.of_json(200, {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}]})
        if scenario == "malformed":
            return Reply.of_json(200, {"modelVersion": "x"})
        part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(self.image).decode()}}
        return Reply.of_json(
            200, {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}]}
        )

    def _start(self, call: Call) -> Reply:
        scenario = self.failing("submit")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        if scenario == "malformed":
            return Reply.of_json(200, {"done": False})
        body = call.json()
        if not body.get("instances") or not body["instances"][0].get("prompt"):
            return error(400, "INVALID_ARGUMENT", "instances[0].prompt is required")
        for frame in ("image", "lastFrame"):
            if frame in body["instances"][0] and not body["instances"][0][frame].get("bytesBase64Encoded"):
                return error(400, "INVALID_ARGUMENT", f"instances[0].{frame}.bytesBase64Encoded is required")
        model = call.path.split("/models/", 1)[1].split(":", 1)[0]
        name = f"models/{model}/operations/op{next(self.counter)}"
        self.operations[name] = self.pending_checks
        return Reply.of_json(200, {"name": name})

    def _operation(self, call: Call) -> Reply:
        name = call.path.split("/", 2)[2]  # after the API version: /v1/… or /v1beta/…
        scenario = self.failing("check")
        failure = self._common_failure(scenario)
        if failure is not None:
            return failure
        if scenario == "lost" or name not in self.operations:
            return error(404, "NOT_FOUND", "Operation not found")
        if self.operations[name] > 0:
            self.operations[name] -= 1
            return Reply.of_json(200, {"name": name, "done": False})
        if scenario == "policy":
            response = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["blocked by safety filters"]}
        elif scenario == "malformed":
            response = {"generatedSamples": [{"video": {}}]}
        else:
            uri = f"https://{HOST}/v1beta/files/{name.rsplit('/', 1)[1]}:download?alt=media"
            response = {"generatedSamples": [{"video": {"uri": uri}}]}
        payload = {
            "name": name,
            "done": True,
            "response": {
                "@type": "type.googleapis.com/x.PredictLongRunningResponse",
                "generateVideoResponse": response,
            },
        }
        return Reply.of_json(200, payload)
