"""The HTTP client factory: retries, Retry-After, redaction."""

from __future__ import annotations

import httpx
import pytest

from deployctl.errors import ApiError
from deployctl.http import HttpClient, RetryPolicy, redact, retry_after_seconds
from tests.deployctl.fakes.server import FakeServer, Request, Response
from tests.deployctl.fakes.world import SimClock


@pytest.fixture
def flaky_server():
    answers: list[Response] = []
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return answers.pop(0) if answers else Response(200, {"ok": True})

    server = FakeServer(handler)
    yield server.url, answers, seen
    server.close()


def client(url: str, clock: SimClock, **kwargs) -> HttpClient:
    return HttpClient(name="test", base_url=url, clock=clock, retry=RetryPolicy(attempts=3), **kwargs)


def test_429_is_retried_after_the_servers_retry_after(flaky_server):
    url, answers, seen = flaky_server
    answers.append(Response(429, {}, {"Retry-After": "7"}))
    clock = SimClock()
    http = client(url, clock)
    assert http.request("POST", "/x").status_code == 200
    assert http.sleeps == [7.0]
    assert len(seen) == 2


def test_a_mutation_is_not_retried_on_a_5xx(flaky_server):
    url, answers, seen = flaky_server
    answers.append(Response(503, {}))
    http = client(url, SimClock())
    assert http.request("POST", "/mutation").status_code == 503
    assert len(seen) == 1


def test_a_read_is_retried_on_a_5xx_with_backoff(flaky_server):
    url, answers, _ = flaky_server
    answers += [Response(503, {}), Response(502, {})]
    http = client(url, SimClock())
    assert http.request("GET", "/read").status_code == 200
    assert http.sleeps == [1.0, 2.0]


def test_retry_after_is_capped(flaky_server):
    url, answers, _ = flaky_server
    answers.append(Response(429, {}, {"Retry-After": "3600"}))
    http = client(url, SimClock())
    http.request("GET", "/x")
    assert http.sleeps == [60.0]


def test_telegram_retry_after_in_the_body_is_read():
    response = httpx.Response(429, json={"ok": False, "parameters": {"retry_after": 5}})
    assert retry_after_seconds(response) == 5.0


def test_an_unreachable_host_raises_api_error_without_the_url_or_secret():
    http = HttpClient(
        name="t",
        base_url="http://127.0.0.1:9",
        clock=SimClock(),
        retry=RetryPolicy(attempts=2),
        secrets=("s3cret-value",),
    )
    with pytest.raises(ApiError) as raised:
        http.request("GET", "/bots3cret-value/getMe", label="getMe")
    assert "s3cret-value" not in str(raised.value)
    assert "127.0.0.1" not in str(raised.value)


def test_redact_replaces_every_secret():
    assert redact("a TOKEN and TOKEN", ["TOKEN"]) == "a *** and ***"
