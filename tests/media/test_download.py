"""Fetching vendor result files: only the vendor's hosts over https, never a
private address, size-capped, and typed by the bytes."""

from __future__ import annotations

import httpx
import pytest

from nanobanana.core.errors import ProviderError, ProviderTransientError
from nanobanana.media import download as media_download
from tests.providers.fakes.base import sample_mp4, sample_png

ALLOWED = ("klingai.com",)
PUBLIC = "93.184.216.34"


def client(handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def serve(body: bytes, content_type: str = "video/mp4", status: int = 200, headers: dict[str, str] | None = None):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(status, content=body, headers={"content-type": content_type, **(headers or {})})

    return handler, seen


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    table = {"cdn.klingai.com": [PUBLIC], "evil.klingai.com": ["10.0.0.5"], "mixed.klingai.com": [PUBLIC, "127.0.0.1"]}
    monkeypatch.setattr(media_download, "resolver", lambda host: table.get(host, [PUBLIC]))


def fetch(url: str, handler, *, types=("video/mp4",), max_bytes: int = 10_000):
    return media_download.download(
        url=url, allowed_hosts=ALLOWED, types=types, max_bytes=max_bytes, client=client(handler)
    )


def test_a_vendor_file_is_fetched_and_typed_by_its_bytes():
    handler, seen = serve(sample_mp4(), content_type="application/octet-stream")
    result = fetch("https://cdn.klingai.com/v/1.mp4", handler)
    assert (result.data, result.content_type) == (sample_mp4(), "video/mp4")
    assert seen == ["https://cdn.klingai.com/v/1.mp4"]


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.klingai.com/v.mp4",  # not https
        "file:///etc/passwd",
        "ftp://cdn.klingai.com/v.mp4",
        "https://example.com/v.mp4",  # not the vendor's host
        "https://klingai.com.evil.org/v.mp4",  # look-alike
        "https://93.184.216.34/v.mp4",  # a bare address
        "https://[::1]/v.mp4",
        "https://evil.klingai.com/v.mp4",  # the vendor's name, a private address
        "https://mixed.klingai.com/v.mp4",  # one of its addresses is loopback
        "https://user:pw@cdn.klingai.com/v.mp4",  # pragma: allowlist secret
    ],
)
def test_urls_outside_the_rules_are_refused_before_any_request(url):
    handler, seen = serve(sample_mp4())
    with pytest.raises(ProviderError) as caught:
        fetch(url, handler)
    assert caught.value.code == "result_invalid"
    assert seen == []


def test_a_redirect_to_a_private_address_is_refused():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.klingai.com":
            return httpx.Response(302, headers={"location": "https://evil.klingai.com/x.mp4"})
        return httpx.Response(200, content=sample_mp4(), headers={"content-type": "video/mp4"})

    with pytest.raises(ProviderError) as caught:
        fetch("https://cdn.klingai.com/v.mp4", handler)
    assert caught.value.code == "result_invalid"


def test_a_redirect_within_the_vendors_hosts_is_followed():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old.mp4":
            return httpx.Response(301, headers={"location": "/new.mp4"})
        return httpx.Response(200, content=sample_mp4(), headers={"content-type": "video/mp4"})

    assert fetch("https://cdn.klingai.com/old.mp4", handler).data == sample_mp4()


def test_a_file_over_the_cap_is_cut_off_even_without_a_content_length():
    body = sample_mp4() + b"\x00" * 20_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(body), headers={"content-type": "video/mp4"})

    with pytest.raises(ProviderError) as caught:
        fetch("https://cdn.klingai.com/v.mp4", handler)
    assert caught.value.code == "result_invalid"


def test_a_declared_length_over_the_cap_is_refused():
    handler, _ = serve(sample_mp4(), headers={"content-length": "999999999"})
    with pytest.raises(ProviderError):
        fetch("https://cdn.klingai.com/v.mp4", handler)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"<html>login</html>", "text/html"), (b"<html>login</html>", "video/mp4"), (sample_png(), "video/mp4")],
)
def test_the_wrong_type_is_refused_by_header_or_by_bytes(body, content_type):
    handler, _ = serve(body, content_type=content_type)
    with pytest.raises(ProviderError) as caught:
        fetch("https://cdn.klingai.com/v.mp4", handler)
    assert caught.value.code == "result_invalid"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_vendor_hiccups_are_transient(status):
    handler, _ = serve(b"busy", content_type="text/plain", status=status)
    with pytest.raises(ProviderTransientError):
        fetch("https://cdn.klingai.com/v.mp4", handler)


def test_an_expired_link_is_not_retried():
    handler, _ = serve(b"<Error>AccessDenied</Error>", content_type="application/xml", status=403)
    with pytest.raises(ProviderError) as caught:
        fetch("https://cdn.klingai.com/v.mp4", handler)
    assert not isinstance(caught.value, ProviderTransientError)


def test_a_timeout_is_transient():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderTransientError):
        fetch("https://cdn.klingai.com/v.mp4", handler)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped private
        ("2606:4700::1111", True),
        ("not-an-address", False),
    ],
)
def test_address_public(address, public):
    assert media_download.address_public(address) is public
