"""The post-deploy monitor: repeated measurements of one release, a failure
limit, and a verdict with reasons.

Each round measures: the fast health (version-aware), the deep health (every
dependency and the worker and beat heartbeats), the error-level logs of this
release's deployments only, the HTTP 5xx rate of the web deployment, and the
Telegram webhook. Health-like checks fail after `failure_limit` consecutive
failures; cumulative ones (error logs, 5xx rate) fail as soon as their
threshold is crossed; an old version still serving fails after
`version_timeout`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployctl import health
from deployctl.clients.railway import Deployment, RailwayClient
from deployctl.clients.telegram import TelegramClient
from deployctl.clock import Clock, format_timestamp
from deployctl.errors import ApiError
from deployctl.http import HttpClient
from deployctl.logs import error_lines, summary
from deployctl.settings import Settings
from deployctl.verdict import CheckResult, Verdict, combine, failed, inconclusive, passed
from deployctl.webhook import webhook_checks

# Checks whose failure a rollback cannot mend: the webhook is set outside deploys.
NOT_MENDED_BY_ROLLBACK = frozenset({"webhook"})
IMMEDIATE = frozenset({"error_logs", "http_5xx", "version"})


@dataclass(frozen=True)
class MonitorConfig:
    duration: float = 300.0
    interval: float = 10.0
    failure_limit: int = 3
    version_timeout: float = 120.0
    heartbeat_max_age: float = 180.0
    max_error_logs: int = 3
    max_5xx_rate: float = 0.05
    min_requests: int = 20


@dataclass
class Target:
    """The release being watched."""

    environment: str
    base_url: str
    expected_version: str | None
    deployments: list[Deployment] = field(default_factory=list)
    started_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "base_url": self.base_url,
            "expected_version": self.expected_version,
            "deployments": [deployment.to_json() for deployment in self.deployments],
        }


@dataclass
class MonitorReport:
    target: Target
    verdict: Verdict
    reasons: list[str]
    checks: list[CheckResult]
    rounds: int
    elapsed_seconds: float
    rollback_recommended: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "monitor",
            "verdict": self.verdict.value,
            "reasons": self.reasons,
            "rollback_recommended": self.rollback_recommended,
            "rounds": self.rounds,
            "elapsed_seconds": round(self.elapsed_seconds, 1),
            "target": self.target.to_json(),
            "checks": [check.to_json() for check in self.checks],
        }

    def to_markdown(self) -> str:
        version = self.target.expected_version or "unknown version"
        lines = [
            f"### Post-deploy monitor, {self.target.environment} ({version}): **{self.verdict.value}**",
            "",
            f"{self.rounds} rounds in {self.elapsed_seconds:.0f} s; rollback recommended: "
            f"{'yes' if self.rollback_recommended else 'no'}.",
            "",
        ]
        lines += [f"- {reason}" for reason in self.reasons]
        lines += ["", "| check | verdict | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {c.verdict.value} | {c.reason.replace('|', '/')} |" for c in self.checks]
        return "\n".join(lines) + "\n"


def resolve_target(
    railway: RailwayClient | None,
    *,
    environment: str,
    base_url: str,
    services: tuple[str, ...],
    web_service: str,
    deployment_id: str | None,
    expected_version: str | None,
) -> tuple[Target, CheckResult | None]:
    """Find this release's deployment per service. Railway being unreachable is
    not fatal here: the result says why and the health checks still run."""
    target = Target(environment=environment, base_url=base_url, expected_version=expected_version)
    if railway is None:
        return target, inconclusive("railway", "Railway is not configured")
    try:
        if deployment_id:
            anchor = railway.deployment(deployment_id)
        else:
            # Without an id: the newest web deployment of the expected version, else the newest.
            candidates = railway.deployments(environment, web_service)
            matching = [d for d in candidates if expected_version and d.commit == expected_version]
            anchor = (matching or candidates)[0]
        commit = expected_version or anchor.commit
        for service in services:
            if service == anchor.service:
                target.deployments.append(anchor)
                continue
            same = [d for d in railway.deployments(environment, service) if commit and d.commit == commit]
            if same:
                target.deployments.append(same[0])
    except (ApiError, IndexError) as exc:
        return target, inconclusive("railway", f"cannot read deployments: {exc}")
    target.expected_version = commit
    target.started_at = min(d.created_at for d in target.deployments)
    return target, None


class Monitor:
    """One monitoring run; `run()` returns the report."""

    def __init__(
        self,
        *,
        target: Target,
        app: HttpClient,
        railway: RailwayClient | None,
        bot: TelegramClient | None,
        clock: Clock,
        config: MonitorConfig,
        web_service: str = "web",
        on_round: Callable[[int, list[CheckResult]], None] | None = None,
    ) -> None:
        self.target, self.app, self.railway, self.bot = target, app, railway, bot
        self.clock, self.config, self.web_service, self.on_round = clock, config, web_service, on_round
        self.streaks: dict[str, int] = {}
        self.pending_counts: list[int] = []

    def run(self, resolution_problem: CheckResult | None = None) -> MonitorReport:
        start = self.clock.now()
        if self.target.started_at is None:
            self.target.started_at = start
        rounds, results = 0, []
        while True:
            rounds += 1
            results = self.measure(start)
            if resolution_problem:
                results.append(resolution_problem)
            if self.on_round:
                self.on_round(rounds, results)
            fatal = [r for r in results if r.verdict is Verdict.FAIL and self._is_fatal(r)]
            if fatal:
                return self._report(Verdict.FAIL, fatal, results, rounds, start)
            if self.clock.now() - start + self.config.interval > self.config.duration:
                break
            self.clock.sleep(self.config.interval)
        # Fatal failures returned above; a failure still under its limit is a doubt, not a verdict.
        verdict = combine(Verdict.INCONCLUSIVE if r.verdict is Verdict.FAIL else r.verdict for r in results)
        doubts = [r for r in results if r.verdict is not Verdict.PASS]
        return self._report(verdict, doubts, results, rounds, start)

    def _is_fatal(self, result: CheckResult) -> bool:
        return result.name in IMMEDIATE or self.streaks.get(result.name, 0) >= self.config.failure_limit

    def _report(
        self, verdict: Verdict, why: list[CheckResult], results: list[CheckResult], rounds: int, start: float
    ) -> MonitorReport:
        failing = {r.name for r in why if r.verdict is Verdict.FAIL}
        recommended = verdict is Verdict.FAIL and bool(failing - NOT_MENDED_BY_ROLLBACK) and "version" not in failing
        reasons = [f"{r.verdict.value}: {r.name}: {r.reason}" for r in why] or ["every check passed in the last round"]
        return MonitorReport(self.target, verdict, reasons, results, rounds, self.clock.now() - start, recommended)

    def _count(self, result: CheckResult) -> CheckResult:
        if result.verdict is Verdict.FAIL:
            self.streaks[result.name] = self.streaks.get(result.name, 0) + 1
        else:
            self.streaks[result.name] = 0
        return result

    def measure(self, start: float) -> list[CheckResult]:
        """One round of every measurement."""
        results: list[CheckResult] = []
        version = health.check_version(health.probe(self.app), self.target.expected_version)
        if version.data.get("waiting") and self.clock.now() - start >= self.config.version_timeout:
            version = failed("version", f"after {self.config.version_timeout:.0f} s still {version.reason}")
        results.append(self._count(version))
        if version.verdict is Verdict.PASS:
            deep = health.check_deep(health.probe(self.app, deep=True), heartbeat_max_age=self.config.heartbeat_max_age)
            results += [self._count(result) for result in deep]
        else:
            results.append(inconclusive("deep", "skipped until the new version serves"))
        results.append(self._count(self.check_logs()))
        results.append(self._count(self.check_http()))
        results.append(self._count(self.check_webhook()))
        return results

    def _window(self, deployment: Deployment) -> tuple[str, str]:
        return format_timestamp(deployment.created_at), format_timestamp(self.clock.now())

    def check_logs(self) -> CheckResult:
        """Error-level lines written by this release's deployments since they started."""
        if self.railway is None or not self.target.deployments:
            return inconclusive("error_logs", "no deployments to read logs from")
        errors: list[str] = []
        try:
            for deployment in self.target.deployments:
                start, end = self._window(deployment)
                lines = self.railway.deployment_logs(deployment.id, start=start, end=end)
                errors += [f"{deployment.service}: {summary(line)}" for line in error_lines(lines)]
        except ApiError as exc:
            return inconclusive("error_logs", f"cannot read logs: {exc}")
        if len(errors) > self.config.max_error_logs:
            return failed(
                "error_logs", f"{len(errors)} error lines (limit {self.config.max_error_logs})", sample=errors[:5]
            )
        return passed("error_logs", f"{len(errors)} error lines", sample=errors[:5])

    def check_http(self) -> CheckResult:
        """The web deployment's 5xx rate since it started."""
        web = [d for d in self.target.deployments if d.service == self.web_service]
        if self.railway is None or not web:
            return inconclusive("http_5xx", "no web deployment to read HTTP logs from")
        try:
            start, end = self._window(web[0])
            requests = self.railway.http_logs(web[0].id, start=start, end=end)
        except ApiError as exc:
            return inconclusive("http_5xx", f"cannot read HTTP logs: {exc}")
        errors = sum(1 for request in requests if request.status >= 500)
        total = len(requests)
        rate = errors / total if total else 0.0
        reason = f"{errors}/{total} requests answered 5xx"
        if total >= self.config.min_requests and rate > self.config.max_5xx_rate:
            return failed("http_5xx", f"{reason} ({rate:.0%} > {self.config.max_5xx_rate:.0%})", rate=rate)
        return passed("http_5xx", reason, rate=rate)

    def check_webhook(self) -> CheckResult:
        """Right URL, no delivery error since the deploy, pending count not growing."""
        if self.bot is None:
            return inconclusive("webhook", "TELEGRAM_BOT_TOKEN is not set")
        try:
            checks, info = webhook_checks(
                self.bot, base_url=self.target.base_url, allowed_updates=None, since=self.target.started_at
            )
        except ApiError as exc:
            return inconclusive("webhook", f"cannot read the webhook: {exc}")
        wrong = [check for check in checks if check.verdict is Verdict.FAIL]
        if wrong:
            return failed("webhook", "; ".join(f"{check.name} {check.reason}" for check in wrong))
        pending = int(str(info["pending_update_count"]))
        self.pending_counts.append(pending)
        recent = self.pending_counts[-2:]
        if len(recent) == 2 and recent[1] > recent[0]:
            return failed("webhook", f"pending updates growing: {recent[0]} -> {recent[1]}")
        return passed("webhook", f"ok, {pending} pending")


def run_monitor(
    settings: Settings,
    *,
    environment: str,
    deployment_id: str | None = None,
    expected_version: str | None = None,
    config: MonitorConfig | None = None,
    on_round: Callable[[int, list[CheckResult]], None] | None = None,
) -> MonitorReport:
    """Resolve the release in `environment` and watch it."""
    base_url = settings.base_url(environment)
    railway = settings.railway()
    target, problem = resolve_target(
        railway,
        environment=environment,
        base_url=base_url,
        services=settings.services,
        web_service=settings.web_service,
        deployment_id=deployment_id,
        expected_version=expected_version,
    )
    monitor = Monitor(
        target=target,
        app=settings.app(base_url),
        railway=railway,
        bot=settings.bot() if settings.bot_token else None,
        clock=settings.clock,
        config=config or MonitorConfig(),
        web_service=settings.web_service,
        on_round=on_round,
    )
    return monitor.run(problem)
