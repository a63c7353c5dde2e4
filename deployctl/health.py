"""The app's health contract, read by the smoke check and the monitor.

`GET /api/health` -> 200 {"ok": true, "version": sha}; `?deep=1` adds
`checks` (database, broker, storage, worker_heartbeat, beat_heartbeat,
inbox_backlog), each {"ok": bool, "detail": str, ...}, and answers 503 when
one fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deployctl.clock import Clock
from deployctl.errors import ApiError
from deployctl.http import HttpClient
from deployctl.verdict import CheckResult, Verdict, combine, failed, inconclusive, passed

HEALTH_PATH = "/api/health"
HEARTBEATS = ("worker_heartbeat", "beat_heartbeat")


@dataclass(frozen=True)
class Probe:
    """One answer of the health endpoint, or why there was none."""

    status: int | None
    body: dict[str, Any] | None
    error: str | None = None

    @property
    def version(self) -> str | None:
        version = (self.body or {}).get("version")
        return str(version) if version else None


def probe(app: HttpClient, *, deep: bool = False) -> Probe:
    """Ask the health endpoint once; never raises."""
    try:
        response = app.request("GET", HEALTH_PATH, params={"deep": "1"} if deep else None, label="health")
    except ApiError as exc:
        return Probe(status=None, body=None, error=str(exc))
    try:
        body = response.json()
    except ValueError:
        body = None
    return Probe(status=response.status_code, body=body if isinstance(body, dict) else None)


def same_version(served: str | None, expected: str) -> bool:
    """Versions match when one is a prefix of the other (short and full SHAs)."""
    if not served:
        return False
    return served.startswith(expected) or expected.startswith(served)


def check_version(result: Probe, expected: str | None) -> CheckResult:
    """Pass when the fast health answers ok with the expected version.

    An old version is inconclusive (the new one may still be cutting over);
    a 5xx or a non-JSON answer fails; no answer at all is inconclusive.
    """
    name = "health"
    if result.status is None:
        return inconclusive(name, f"no answer: {result.error}", unreachable=True)
    if result.status >= 500 or result.body is None or not result.body.get("ok"):
        return failed(name, f"health answered HTTP {result.status}", status=result.status)
    if expected and not same_version(result.version, expected):
        return inconclusive(
            name, f"serving {result.version}, waiting for {expected}", version=result.version, waiting=True
        )
    return passed(name, f"ok, version {result.version}", version=result.version)


def check_deep(result: Probe, *, heartbeat_max_age: float) -> list[CheckResult]:
    """One result per deep check. Heartbeats also fail when older than `heartbeat_max_age`."""
    if result.status is None:
        return [inconclusive("deep", f"no answer: {result.error}")]
    checks = (result.body or {}).get("checks")
    if not isinstance(checks, dict):
        return [failed("deep", f"deep health answered HTTP {result.status} without checks")]
    results: list[CheckResult] = []
    for key, check in sorted(checks.items()):
        if not isinstance(check, dict):
            results.append(failed(key, "malformed check"))
            continue
        detail = str(check.get("detail", ""))
        age = check.get("age_seconds")
        if not check.get("ok"):
            results.append(failed(key, detail or "not ok", age_seconds=age))
        elif key in HEARTBEATS and (age is None or float(age) > heartbeat_max_age):
            reason = f"last heartbeat {age} s ago (limit {heartbeat_max_age:.0f} s)"
            results.append(failed(key, reason, age_seconds=age))
        else:
            results.append(passed(key, detail or "ok"))
    missing = [key for key in HEARTBEATS if key not in checks]
    results.extend(failed(key, "missing from deep health") for key in missing)
    return results


@dataclass(frozen=True)
class SmokeConfig:
    version_timeout: float = 300.0
    interval: float = 5.0
    heartbeat_max_age: float = 180.0


@dataclass(frozen=True)
class SmokeReport:
    url: str
    expected_version: str | None
    verdict: Verdict
    checks: list[CheckResult]
    waited_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "smoke",
            "url": self.url,
            "expected_version": self.expected_version,
            "verdict": self.verdict.value,
            "waited_seconds": round(self.waited_seconds, 1),
            "checks": [check.to_json() for check in self.checks],
        }

    def to_markdown(self) -> str:
        lines = [f"### Smoke {self.url}: **{self.verdict.value}**", ""]
        lines += [f"- {check.verdict.value}: `{check.name}` {check.reason}" for check in self.checks]
        return "\n".join(lines) + "\n"


def wait_for_version(
    app: HttpClient,
    expected: str | None,
    *,
    clock: Clock,
    timeout: float,
    interval: float,
    on_wait: Callable[[CheckResult], None] | None = None,
) -> CheckResult:
    """Poll the fast health until it serves `expected`.

    Returns pass, or after `timeout`: fail when an old version or errors were
    served (the new one never came), inconclusive when nothing answered.
    """
    start = clock.now()
    while True:
        result = check_version(probe(app), expected)
        if result.verdict is Verdict.PASS:
            return result
        if clock.now() - start >= timeout:
            if result.data.get("unreachable"):
                return result
            return failed("health", f"after {timeout:.0f} s: {result.reason}", **result.data)
        if on_wait:
            on_wait(result)
        clock.sleep(interval)


def smoke(
    app: HttpClient,
    url: str,
    expected: str | None,
    *,
    clock: Clock,
    config: SmokeConfig | None = None,
    on_wait: Callable[[CheckResult], None] | None = None,
) -> SmokeReport:
    """Wait until the expected version serves, then run the deep check once."""
    config = config or SmokeConfig()
    start = clock.now()
    version = wait_for_version(
        app, expected, clock=clock, timeout=config.version_timeout, interval=config.interval, on_wait=on_wait
    )
    checks = [version]
    if version.verdict is Verdict.PASS:
        checks += check_deep(probe(app, deep=True), heartbeat_max_age=config.heartbeat_max_age)
    return SmokeReport(
        url=url,
        expected_version=expected,
        verdict=combine(check.verdict for check in checks),
        checks=checks,
        waited_seconds=clock.now() - start,
    )
