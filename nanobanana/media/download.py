"""Fetching a vendor's result file by URL, safely.

A result URL comes from a vendor's answer, so it is treated as untrusted:

- only `https`, only hosts on the vendor's own allow-list (exact names or
  sub-domains of a listed domain), and every address the name resolves to
  must be public: never loopback, private, link-local, or reserved;
- redirects are followed by hand, each hop checked the same way;
- the body is streamed and cut off at `max_bytes`, and its type must be one
  of `types`, confirmed by the bytes' magic number (a wrong or missing
  `Content-Type` header is judged by the bytes).

Failures map to the provider errors: timeouts, connection failures and 5xx
are transient; anything else about the file is `result_invalid`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from nanobanana.core.errors import ProviderError, ProviderTransientError
from nanobanana.core.http import http_client
from nanobanana.media.storage import MEDIA_TYPES

MAX_REDIRECTS = 3
TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=10.0, pool=10.0)
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Downloaded:
    data: bytes
    content_type: str


def _resolve(host: str) -> list[str]:
    """Every address `host` resolves to. Replaced in tests, where no DNS exists."""
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)})
    except OSError as error:
        raise ProviderTransientError(f"cannot resolve {host}: {type(error).__name__}", retry_after=5) from error


resolver: Callable[[str], list[str]] = _resolve


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in (d.lower().strip(".") for d in allowed))


def address_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allowed_hosts: Iterable[str]) -> str:
    """The URL's host when it may be fetched; `result_invalid` otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ProviderError("result URL is not a URL", code="result_invalid") from None
    host = parts.hostname or ""
    if parts.scheme != "https" or not host or parts.username or parts.password:
        raise ProviderError(f"result URL must be https with a host, got scheme {parts.scheme!r}", code="result_invalid")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ProviderError("result URL names an IP address, not the vendor's host", code="result_invalid")
    if not host_allowed(host, allowed_hosts):
        raise ProviderError(f"result host {host!r} is not one of the vendor's hosts", code="result_invalid")
    addresses = resolver(host)
    if not addresses or not all(address_public(address) for address in addresses):
        raise ProviderError(f"result host {host!r} resolves to a non-public address", code="result_invalid")
    return host


def download(
    *,
    url: str,
    allowed_hosts: Iterable[str],
    types: Iterable[str],
    max_bytes: int,
    client: httpx.Client | None = None,
    headers: Mapping[str, str] | None = None,
) -> Downloaded:
    """Fetch `url` under the rules in the module docstring."""
    allowed = tuple(allowed_hosts)
    wanted = tuple(types)
    own_client = client is None
    http = client or http_client(timeout=TIMEOUT)
    try:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            check_url(current, allowed_hosts=allowed)
            try:
                with http.stream("GET", current, headers=dict(headers or {}), follow_redirects=False) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        current = urljoin(current, location)
                        continue
                    return _read(response, wanted=wanted, max_bytes=max_bytes)
            except httpx.TimeoutException as error:
                raise ProviderTransientError(f"result download timed out: {type(error).__name__}") from error
            except httpx.TransportError as error:
                raise ProviderTransientError(f"result download failed: {type(error).__name__}") from error
        raise ProviderError("result URL redirects too often", code="result_invalid")
    finally:
        if own_client:
            http.close()


def _read(response: httpx.Response, *, wanted: tuple[str, ...], max_bytes: int) -> Downloaded:
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderTransientError(f"result download: HTTP {response.status_code}", retry_after=5)
    if response.status_code != 200:
        raise ProviderError(f"result download: HTTP {response.status_code}", code="result_invalid")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ProviderError(f"result is {declared} bytes; the limit is {max_bytes}", code="result_invalid")
    header_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if (
        header_type
        and header_type not in wanted
        and header_type not in {"application/octet-stream", "binary/octet-stream"}
    ):
        raise ProviderError(f"result has type {header_type!r}", code="result_invalid")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ProviderError(f"result is larger than {max_bytes} bytes", code="result_invalid")
        chunks.append(chunk)
    data = b"".join(chunks)
    return Downloaded(data=data, content_type=content_type_of(data, wanted=wanted))


def content_type_of(data: bytes, *, wanted: Iterable[str]) -> str:
    """The first of `wanted` whose magic number the bytes carry; `result_invalid` if none."""
    for content_type in wanted:
        media_type = MEDIA_TYPES.get(content_type)
        if media_type is not None and media_type.matches(data):
            return content_type
    raise ProviderError("result bytes are not of an accepted type", code="result_invalid")
