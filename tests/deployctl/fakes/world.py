"""A simulated Railway project running the app, on a simulated clock.

The fakes read this state at the simulated time, so a monitor or rollback
run against them sees deployments go live, crash and roll back exactly as
the scenario says, and a five-minute monitoring window takes milliseconds.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

START = 1_750_000_000.0
SERVICES = ("web", "worker", "beat")
PRODUCTION_URL = "https://bot.example.test"


class SimClock:
    """Simulated epoch time; `sleep` advances it at once. Shared with the fakes."""

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
            self.slept += max(0.0, seconds)


@dataclass
class Behaviour:
    """How one version of the app behaves once live."""

    crash: bool = False  # the process dies at boot: the edge answers 502
    http_500_after: float | None = None  # seconds after going live when requests start failing
    errors_per_minute: float = 0.0  # error-level log lines, from going live
    worker_heartbeat_age: float = 5.0
    beat_heartbeat_age: float = 5.0


@dataclass
class SimDeployment:
    id: str
    environment: str
    service: str
    commit: str
    created_at: float
    events: list[tuple[float, str]]
    live_at: float | None
    can_rollback: bool = True
    can_redeploy: bool = True
    removed_at: float | None = None

    def status(self, now: float) -> str:
        current = "QUEUED"
        for moment, status in sorted(self.events):
            if moment <= now:
                current = status
        return current


@dataclass
class Webhook:
    url: str = PRODUCTION_URL + "/api/telegram/webhook"
    pending: int = 0
    pending_per_minute: float = 0.0
    last_error_date: int | None = None
    last_error_message: str | None = None
    allowed_updates: list[str] = field(default_factory=lambda: ["message", "callback_query"])
    secret_token: str | None = None
    max_connections: int = 40


class World:
    """One Railway project with production and staging, web/worker/beat each."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.project_id = "project-1"
        self.services = {name: f"service-{name}" for name in SERVICES}
        self.environments = {"production": "env-production", "staging": "env-staging"}
        self.deployments: list[SimDeployment] = []
        self.behaviours: dict[str, Behaviour] = {}
        self.rollback_delay = 15.0
        self.redeploy_delay = 120.0
        self.railway_down = False
        self.railway_rate_limited = 0  # answer this many next calls with 429
        self.github_down = False
        self.mutations: list[tuple[str, dict[str, Any]]] = []
        self.webhook = Webhook()
        self.webhook_since = clock.now()
        self._ids = itertools.count(1)

    # --- building scenarios -------------------------------------------------
    def deploy(
        self,
        commit: str,
        *,
        environment: str = "production",
        services: tuple[str, ...] = SERVICES,
        behaviour: Behaviour | None = None,
        live: bool = True,
        after: float = 0.0,
        failed: bool = False,
        can_rollback: bool = True,
    ) -> dict[str, SimDeployment]:
        """Deploy `commit` now; when `live`, it takes traffic `after` seconds from now."""
        with self.lock:
            if behaviour is not None or commit not in self.behaviours:
                self.behaviours[commit] = behaviour or Behaviour()
            crash = self.behaviours[commit].crash
            now = self.clock.now()
            created = {}
            for service in services:
                events = [(now, "DEPLOYING")]
                if live:
                    events.append((now + after, "SUCCESS"))
                    if crash:
                        events.append((now + after + 1, "CRASHED"))
                elif failed:
                    events.append((now + 60, "FAILED"))
                created[service] = self._add(environment, service, commit, now, events, now + after if live else None)
                created[service].can_rollback = can_rollback
            return created

    def _add(
        self,
        environment: str,
        service: str,
        commit: str,
        created: float,
        events: list[tuple[float, str]],
        live_at: float | None,
    ) -> SimDeployment:
        if live_at is not None:
            previous = self.serving(environment, service, at=live_at)
            if previous is not None:
                previous.events.append((live_at, "REMOVED"))
                previous.removed_at = live_at
        deployment = SimDeployment(
            id=f"deployment-{next(self._ids)}",
            environment=environment,
            service=service,
            commit=commit,
            created_at=created,
            events=events,
            live_at=live_at,
        )
        self.deployments.append(deployment)
        return deployment

    # --- reading state ------------------------------------------------------
    def serving(self, environment: str, service: str, *, at: float | None = None) -> SimDeployment | None:
        moment = self.clock.now() if at is None else at
        live = [
            d
            for d in self.deployments
            if d.environment == environment
            and d.service == service
            and d.live_at is not None
            and d.live_at <= moment
            and (d.removed_at is None or d.removed_at > moment)
        ]
        return max(live, key=lambda d: d.live_at or 0.0, default=None)

    def behaviour_of(self, environment: str, service: str) -> Behaviour | None:
        deployment = self.serving(environment, service)
        return self.behaviours[deployment.commit] if deployment else None

    def find(self, deployment_id: str) -> SimDeployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    def mutation_ids(self, name: str) -> list[str]:
        return [str(variables["id"]) for mutation, variables in self.mutations if mutation == name]

    # --- Railway actions ----------------------------------------------------
    def rollback(self, deployment_id: str, *, rebuild: bool = False) -> SimDeployment:
        """A new deployment of an old version that goes live after the rollback (or build) delay."""
        with self.lock:
            source = self.find(deployment_id)
            assert source is not None
            now = self.clock.now()
            ready = now + (self.redeploy_delay if rebuild else self.rollback_delay)
            events = [(now, "BUILDING" if rebuild else "DEPLOYING"), (ready, "SUCCESS")]
            return self._add(source.environment, source.service, source.commit, now, events, ready)

    # --- what the app writes ------------------------------------------------
    def log_lines(self, deployment: SimDeployment, start: float, end: float) -> list[dict[str, Any]]:
        """The deployment's log lines in [start, end): ticks on stdout, a warning on
        stderr (severity error, level warning), and the behaviour's errors."""
        if deployment.live_at is None:
            return []
        behaviour = self.behaviours[deployment.commit]
        stop = min(end, deployment.removed_at or end, self.clock.now())
        lines = []
        for offset in range(0, 3600, 30):
            moment = deployment.live_at + offset
            if moment >= stop:
                break
            if moment >= start:
                lines.append(_line(moment, "info", "info", "tick"))
                lines.append(_line(moment, "error", "warning", "slow query (stderr, not an error)"))
        if behaviour.crash:
            lines.append(_line(deployment.live_at + 1, "error", "critical", "ImproperlyConfigured at boot"))
        if behaviour.errors_per_minute > 0:
            step = 60.0 / behaviour.errors_per_minute
            moment = deployment.live_at + step
            while moment < stop:
                if moment >= start:
                    lines.append(_line(moment, "error", "error", "generation failed"))
                moment += step
        return sorted((line for line in lines if start <= line["_t"] < stop), key=lambda line: line["_t"])

    def http_requests(self, deployment: SimDeployment, start: float, end: float) -> list[tuple[float, int, str]]:
        """One request every 2 s while the web deployment is live."""
        if deployment.live_at is None:
            return []
        behaviour = self.behaviours[deployment.commit]
        stop = min(end, deployment.removed_at or end, self.clock.now())
        requests = []
        moment = deployment.live_at
        while moment < stop:
            if moment >= start:
                if behaviour.crash:
                    status = 502
                elif behaviour.http_500_after is not None and moment - deployment.live_at >= behaviour.http_500_after:
                    status = 500
                else:
                    status = 200
                requests.append((moment, status, "/api/telegram/webhook"))
            moment += 2.0
        return requests

    def webhook_pending(self) -> int:
        minutes = (self.clock.now() - self.webhook_since) / 60.0
        return self.webhook.pending + int(self.webhook.pending_per_minute * minutes)


def _line(moment: float, severity: str, level: str, message: str) -> dict[str, Any]:
    return {"_t": moment, "severity": severity, "message": json.dumps({"level": level, "message": message})}
