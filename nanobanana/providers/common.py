"""What every vendor module shares: keys from the environment, the HTTP
client settings, and the one translation of HTTP failures into our errors.

Keys are read from `os.environ` each time they are needed, never stored in
settings or logged, so a rotated key takes effect without a code change and
no error message can carry one.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from celery.exceptions import SoftTimeLimitExceeded

from nanobanana.core import clock
from nanobanana.core.errors import ProviderError, ProviderJobLost, ProviderPolicyError, ProviderTransientError
from nanobanana.core.http import http_client

# Connect fast, but let a synchronous image call take its time.
TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=60.0, pool=10.0)
# Telling a vendor's own "please retry" apart from everything else.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 300.0


def env(name: str) -> str:
    """An environment variable, stripped; empty when unset."""
    return os.environ.get(name, "").strip()


def env_flag(name: str) -> bool:
    return env(name).lower() in {"1", "true", "yes", "on"}


def retry_after(headers: Mapping[str, str] | httpx.Headers | None) -> float:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date),
    bounded; the default when there is none."""
    raw = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    if not raw:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(raw) - clock.now()).total_seconds()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
    return min(max(seconds, 1.0), MAX_RETRY_AFTER)


def raise_for_http(
    *,
    vendor: str,
    status: int,
    headers: Mapping[str, str] | httpx.Headers | None = None,
    message: str = "",
    policy: bool = False,
    checking: bool = False,
) -> None:
    """Raise the error that an HTTP failure means. `policy` says the vendor's
    body names a content refusal; `checking` says the call asked about an
    existing job, where 404 means the vendor lost it."""
    text = f"{vendor}: HTTP {status} {message}".strip()
    if policy:
        raise ProviderPolicyError(text)
    if status in TRANSIENT_STATUSES or status >= 500:
        raise ProviderTransientError(text, retry_after=retry_after(headers))
    if status == 404 and checking:
        raise ProviderJobLost(text)
    if status in {401, 403}:
        raise ProviderError(text, code="provider_unavailable")
    if status == 402:
        raise ProviderError(text, code="provider_unavailable")
    raise ProviderError(text, code="invalid_input")


def raise_for_transport(*, vendor: str, error: Exception) -> None:
    """Timeouts and connection failures are worth another try."""
    raise ProviderTransientError(f"{vendor}: {type(error).__name__}", retry_after=DEFAULT_RETRY_AFTER) from error


def request_json(
    *, vendor: str, client: httpx.Client | None, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, Any]:
    """One HTTP call to a vendor: the answer and its JSON body (None when the
    body is not JSON). Transport failures become transient errors. `client`
    is the provider's own (tests pass a fake transport); without one, a
    client is made for this call and closed after it."""
    own = client or http_client(timeout=TIMEOUT)
    try:
        response = own.request(method, url, timeout=TIMEOUT, **kwargs)
    except httpx.TransportError as error:
        raise_for_transport(vendor=vendor, error=error)
        raise
    finally:
        if client is None:
            own.close()
    try:
        return response, response.json()
    except ValueError:
        return response, None


def raise_for_time_limit(*, vendor: str, error: Exception) -> None:
    """The task's soft time limit interrupted a slow vendor call: ask again
    in a later task rather than call the answer malformed."""
    if isinstance(error, SoftTimeLimitExceeded):
        raise ProviderTransientError(f"{vendor}: the call outlived the task's time limit") from error


def malformed(vendor: str, what: str) -> ProviderError:
    """An answer that does not have the documented shape. Permanent: asking
    again returns the same answer."""
    return ProviderError(f"{vendor}: malformed answer: {what}", code="malformed_answer")


def sniff_image_type(data: bytes) -> str:
    """The content type of a user's input image, from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ProviderError("the input image is not PNG, JPEG or WebP", code="invalid_input")


def data_uri(data: bytes) -> str:
    return f"data:{sniff_image_type(data)};base64,{base64.b64encode(data).decode()}"


def choice(params: Mapping[str, Any], name: str, allowed: Mapping[Any, Any], default: Any) -> Any:
    """Map a catalog parameter to the vendor's value; an unknown value is the
    user's invalid input, never a crash."""
    value = params.get(name, default)
    try:
        return allowed[value]
    except (KeyError, TypeError):
        raise ProviderError(f"{name}={value!r} is not supported", code="invalid_input") from None


def positive_int(params: Mapping[str, Any], name: str, default: int, *, maximum: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ProviderError(f"{name} must be a whole number from 1 to {maximum}", code="invalid_input")
    return value
