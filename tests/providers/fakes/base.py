"""What every vendor fake shares: a scenario switch, a request log, sample
media, and adapters that plug a fake into an SDK at the transport layer
(`httpx.MockTransport` for google-genai, runwayml and plain httpx;
`httpx2.MockTransport` for the openai SDK).

A fake answers as the vendor's documentation describes. `scenario` picks
the answer for the call named by `phase` ("submit" or "check"); every other
call succeeds:

- `success`; `policy` (the vendor's content refusal); `rate_limited` (429 with
  Retry-After); `server_error` (5xx); `timeout` (the transport times out);
  `malformed` (a 200 whose body lacks the documented shape); `lost` (the
  vendor does not know the job id).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import httpx2
from PIL import Image

SCENARIOS = ("success", "policy", "rate_limited", "server_error", "timeout", "malformed", "lost")
RETRY_AFTER = 17
PUBLIC_ADDRESS = "93.184.216.34"


def sample_png(color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, format="PNG")
    return buffer.getvalue()


def sample_mp4() -> bytes:
    """Enough of an MP4 for the magic-number check: an `ftyp` box, then data."""
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


class FakeTimeout(Exception):
    """Raised by a handler: the adapter turns it into the library's ReadTimeout."""


@dataclass
class Call:
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, payload: Any, **headers: str) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"content-type": "application/json", **headers})


@dataclass
class FakeVendor:
    scenario: str = "success"
    phase: str = "submit"
    calls: list[Call] = field(default_factory=list)

    def failing(self, phase: str) -> str:
        """The scenario when this call is the one meant to fail, else `success`."""
        return self.scenario if phase == self.phase else "success"

    def handle(self, call: Call) -> Reply:  # pragma: no cover - each fake overrides
        raise NotImplementedError

    def dispatch(self, method: str, url: Any, headers: Any, body: bytes) -> Reply:
        call = Call(
            method=method,
            host=str(url.host),
            path=str(url.path),
            query=parse_qs(str(url.query.decode() if isinstance(url.query, bytes) else url.query)),
            headers={key.lower(): value for key, value in headers.items()},
            body=body,
        )
        self.calls.append(call)
        return self.handle(call)

    def paths(self, method: str | None = None) -> list[str]:
        return [call.path for call in self.calls if method is None or call.method == method]


def _mock_client(http: Any, fake: FakeVendor) -> Any:
    """A client of `http` (httpx, or the openai SDK's httpx2: same API) whose
    transport is `fake`."""

    def handler(request: Any) -> Any:
        try:
            reply = fake.dispatch(request.method, request.url, request.headers, request.read())
        except FakeTimeout:
            raise http.ReadTimeout("fake vendor timed out", request=request) from None
        return http.Response(reply.status, content=reply.body, headers=reply.headers)

    return http.Client(transport=http.MockTransport(handler))


def httpx_client(fake: FakeVendor) -> httpx.Client:
    return _mock_client(httpx, fake)


def httpx2_client(fake: FakeVendor) -> httpx2.Client:
    return _mock_client(httpx2, fake)
