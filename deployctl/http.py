"""The one HTTP client factory: every client names itself and declares its
timeout and retry policy; rate limits with `Retry-After` are honoured; no
error message ever carries a secret."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from deployctl.clock import Clock
from deployctl.errors import ApiError

REDACTED = "***"


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries.

    429 is always safe to retry (the request was not processed). Other
    statuses in `retry_statuses` and transport errors are retried only for
    idempotent requests, so a mutation such as a rollback is never sent twice.
    """

    attempts: int = 4
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})


NO_RETRY = RetryPolicy(attempts=1)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (longer than 3 chars, to avoid mangling text) in `text`."""
    for secret in secrets:
        if secret and len(secret) > 3:
            text = text.replace(secret, REDACTED)
    return text


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait: the `Retry-After` header (seconds or
    an HTTP date), or Telegram's `parameters.retry_after` in the JSON body."""
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                moment = parsedate_to_datetime(header)
                date = response.headers.get("Date")
                now = parsedate_to_datetime(date) if date else None
                if now is not None:
                    return max(0.0, (moment - now).total_seconds())
            except (TypeError, ValueError):
                return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        parameters = body.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            return float(parameters["retry_after"])
    return None


@dataclass
class HttpClient:
    """A named httpx client with a timeout, a retry policy and an injectable clock."""

    name: str
    base_url: str
    clock: Clock
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 15.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    secrets: tuple[str, ...] = ()
    sleeps: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": f"deployctl ({self.name})", **self.headers},
            timeout=self.timeout_seconds,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def error(self, label: str, detail: str, status: int | None = None) -> ApiError:
        return ApiError(redact(f"{self.name}: {label}: {detail}", self.secrets), status=status)

    def _wait(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), self.retry.max_wait_seconds)
        self.sleeps.append(seconds)
        self.clock.sleep(seconds)

    def request(
        self,
        method: str,
        path: str,
        *,
        label: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request, retrying per the policy; return the last response.

        `label` names the call in errors instead of the path (Telegram puts the
        token in its paths). Raises ApiError when the server cannot be reached.
        """
        label = label or f"{method} {path}"
        if idempotent is None:
            idempotent = method in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            backoff = self.retry.backoff_seconds * (2**attempt)
            try:
                response = self._client.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                retriable = idempotent or isinstance(exc, httpx.ConnectError)
                if last or not retriable:
                    raise self.error(label, f"cannot reach the API ({type(exc).__name__})") from None
                self._wait(backoff)
                continue
            status = response.status_code
            if not last and status in self.retry.retry_statuses and (idempotent or status == 429):
                asked = retry_after_seconds(response)
                self._wait(asked if asked is not None else backoff)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def json_or_error(self, response: httpx.Response, label: str) -> Any:
        """The JSON body of a 2xx response, or an ApiError naming the status."""
        if response.status_code == 429:
            raise self.error(label, "rate limited, retries exhausted", response.status_code)
        if not response.is_success:
            raise self.error(label, f"HTTP {response.status_code}", response.status_code)
        try:
            return response.json()
        except ValueError:
            raise self.error(label, "the answer is not JSON", response.status_code) from None
