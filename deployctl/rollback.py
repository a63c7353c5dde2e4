"""Rollback: per service, back to the last deployment before the bad one that
served, through Railway (no rebuild while the image is retained; a redeploy
when it is not), wait until that version serves, then open a revert PR so the
next merge does not ship the bad code again. Never pushes to a protected
branch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployctl import health
from deployctl.clients.github import GitHubClient, ensure_pr_url
from deployctl.clients.railway import SERVED_STATUSES, Deployment, RailwayClient
from deployctl.clock import Clock
from deployctl.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS, DeployctlError
from deployctl.http import HttpClient
from deployctl.settings import ENVIRONMENT_BRANCHES, Settings

FAILED_STATUSES = frozenset({"FAILED", "CRASHED", "REMOVED", "SKIPPED"})


@dataclass(frozen=True)
class RollbackConfig:
    poll_interval: float = 5.0
    timeout: float = 300.0
    redeploy_timeout: float = 900.0


@dataclass
class ServiceRollback:
    service: str
    status: str  # "pending" | "done" | "failed" | "skipped"
    detail: str
    bad: Deployment | None = None
    target: Deployment | None = None
    action: str | None = None  # "rollback" | "redeploy"

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "status": self.status,
            "detail": self.detail,
            "action": self.action,
            "bad_deployment": self.bad.id if self.bad else None,
            "target_deployment": self.target.id if self.target else None,
            "target_version": self.target.commit if self.target else None,
        }


@dataclass
class RollbackReport:
    environment: str
    bad_version: str | None
    good_version: str | None
    services: list[ServiceRollback] = field(default_factory=list)
    revert_pr: str | None = None
    revert_error: str | None = None
    elapsed_seconds: float = 0.0

    @property
    def rolled_back(self) -> bool:
        acted = [s for s in self.services if s.status != "skipped"]
        return bool(acted) and all(s.status == "done" for s in acted)

    @property
    def exit_code(self) -> int:
        """0: rolled back and reverted; 1: the rollback failed; 2: rolled back, revert PR missing."""
        if not self.rolled_back:
            return EXIT_FAIL
        return EXIT_PASS if self.revert_pr else EXIT_INCONCLUSIVE

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "rollback",
            "environment": self.environment,
            "rolled_back": self.rolled_back,
            "bad_version": self.bad_version,
            "good_version": self.good_version,
            "services": [service.to_json() for service in self.services],
            "revert_pr": self.revert_pr,
            "revert_error": self.revert_error,
            "elapsed_seconds": round(self.elapsed_seconds, 1),
        }

    def to_markdown(self) -> str:
        state = "done" if self.rolled_back else "FAILED"
        lines = [f"### Rollback, {self.environment}: **{state}** ({self.bad_version} -> {self.good_version})", ""]
        lines += [f"- `{service.service}`: {service.status}, {service.detail}" for service in self.services]
        if self.revert_pr:
            lines.append(f"- revert PR: {self.revert_pr}")
        if self.revert_error:
            lines.append(f"- revert PR NOT opened: {self.revert_error}")
        return "\n".join(lines) + "\n"


def find_bad(deployments: list[Deployment], *, deployment_id: str | None, commit: str | None) -> Deployment | None:
    """The bad deployment: by id, else the newest of the bad commit, else the newest."""
    if deployment_id:
        return next((d for d in deployments if d.id == deployment_id), None)
    if commit:
        return next((d for d in deployments if d.commit == commit), None)
    return deployments[0] if deployments else None


def choose_target(deployments: list[Deployment], bad: Deployment) -> Deployment | None:
    """The newest deployment older than `bad`, of another version, that once served
    and that Railway can still roll back to or redeploy."""
    for deployment in deployments:
        if deployment.created_at >= bad.created_at or deployment.commit == bad.commit:
            continue
        if deployment.status in SERVED_STATUSES and (deployment.can_rollback or deployment.can_redeploy):
            return deployment
    return None


def serving(deployments: list[Deployment]) -> Deployment | None:
    """The deployment that serves now: the newest one in SUCCESS."""
    return next((d for d in deployments if d.status == "SUCCESS"), None)


class Rollback:
    """One rollback of an environment."""

    def __init__(
        self,
        *,
        railway: RailwayClient,
        app: HttpClient | None,
        github: Callable[[], GitHubClient] | None,
        clock: Clock,
        environment: str,
        branch: str,
        services: tuple[str, ...],
        web_service: str,
        config: RollbackConfig | None = None,
        on_wait: Callable[[list[ServiceRollback]], None] | None = None,
    ) -> None:
        self.railway, self.app, self.github, self.clock = railway, app, github, clock
        self.environment, self.branch, self.services, self.web_service = environment, branch, services, web_service
        self.config = config or RollbackConfig()
        self.on_wait = on_wait

    def run(self, *, deployment_id: str | None = None) -> RollbackReport:
        start = self.clock.now()
        web = self.railway.deployments(self.environment, self.web_service)
        bad_web = find_bad(web, deployment_id=deployment_id, commit=None)
        bad_commit = bad_web.commit if bad_web else None
        report = RollbackReport(environment=self.environment, bad_version=bad_commit, good_version=None)
        for service in self.services:
            deployments = web if service == self.web_service else self.railway.deployments(self.environment, service)
            report.services.append(self._start(service, deployments, bad_commit, deployment_id))
        self._wait(report.services)
        targets = [s.target for s in report.services if s.target and s.service == self.web_service]
        targets = targets or [s.target for s in report.services if s.target]
        report.good_version = targets[0].commit if targets else None
        if report.rolled_back and self.github is not None and bad_commit and report.good_version:
            try:
                report.revert_pr = open_revert_pr(
                    self.github(), base=self.branch, bad=bad_commit, good=report.good_version
                )
            except DeployctlError as exc:
                report.revert_error = str(exc)
        elif report.rolled_back:
            report.revert_error = "GitHub is not configured"
        report.elapsed_seconds = self.clock.now() - start
        return report

    def _start(
        self, service: str, deployments: list[Deployment], bad_commit: str | None, deployment_id: str | None
    ) -> ServiceRollback:
        own_id = deployment_id if service == self.web_service else None
        bad = find_bad(deployments, deployment_id=own_id, commit=None if own_id else bad_commit)
        if bad is None:
            return ServiceRollback(service, "skipped", "no deployment of the bad version")
        target = choose_target(deployments, bad)
        if target is None:
            return ServiceRollback(service, "failed", "no earlier deployment that served", bad=bad)
        result = ServiceRollback(service, "pending", "", bad=bad, target=target)
        try:
            if target.can_rollback:
                self.railway.rollback(target.id)
                result.action, result.detail = "rollback", f"rolling back to {target.id} ({target.commit})"
            else:
                self.railway.redeploy(target.id, use_previous_image=False)
                result.action = "redeploy"
                result.detail = f"image of {target.id} out of retention: redeploying {target.commit}"
        except DeployctlError as exc:
            result.status, result.detail = "failed", f"Railway refused: {exc}"
        return result

    def _wait(self, services: list[ServiceRollback]) -> None:
        """Poll until each pending service serves its target version, or its time runs out."""
        start = self.clock.now()
        while True:
            pending = [s for s in services if s.status == "pending"]
            for service in pending:
                self._check(service)
            pending = [s for s in services if s.status == "pending"]
            if not pending:
                return
            elapsed = self.clock.now() - start
            for service in pending:
                limit = self.config.redeploy_timeout if service.action == "redeploy" else self.config.timeout
                if elapsed >= limit:
                    service.status, service.detail = "failed", f"{service.detail}; not serving after {limit:.0f} s"
            if self.on_wait:
                self.on_wait(services)
            if not [s for s in services if s.status == "pending"]:
                return
            self.clock.sleep(self.config.poll_interval)

    def _check(self, service: ServiceRollback) -> None:
        assert service.target is not None
        try:
            live = serving(self.railway.deployments(self.environment, service.service))
        except DeployctlError:
            return  # keep waiting; the timeout decides
        if live is None or live.commit != service.target.commit:
            return
        if service.service == self.web_service and self.app is not None:
            probe = health.probe(self.app)
            if not (probe.status == 200 and health.same_version(probe.version, service.target.commit or "")):
                return
        service.status = "done"
        service.detail = f"{service.action} done: {service.target.commit} serves ({live.id})"


def open_revert_pr(github: GitHubClient, *, base: str, bad: str, good: str) -> str:
    """Open (or find) a PR into `base` whose one commit restores the tree of `good`.

    Only done when `base` still points at `bad`; otherwise later work would be
    undone too, and a person must revert by hand.
    """
    branch = f"revert/{bad[:12]}"
    existing = github.open_pulls(head=branch, base=base)
    if existing:
        return ensure_pr_url(existing[0])
    head = github.branch_head(base)
    if not health.same_version(head, bad):
        raise DeployctlError(f"{base} moved past {bad[:12]} (now {head[:12]}); revert by hand")
    message = f"Revert to {good[:12]}: {bad[:12]} failed the post-deploy monitor"
    commit = github.create_commit(message=message, tree=github.commit_tree(good), parents=[head])
    github.create_branch(branch, commit)
    body = (
        f"The post-deploy monitor failed for `{bad}` and production was rolled back on Railway to `{good}`.\n\n"
        f"This PR restores the tree of `{good}` on `{base}` so the next merge does not ship the bad code again. "
        "Review and merge it by hand; fix forward in a new PR."
    )
    pull = github.create_pull(title=message, head=branch, base=base, body=body)
    return ensure_pr_url(pull)


def run_rollback(
    settings: Settings,
    *,
    environment: str,
    deployment_id: str | None = None,
    config: RollbackConfig | None = None,
    on_wait: Callable[[list[ServiceRollback]], None] | None = None,
) -> RollbackReport:
    """Roll `environment` back to the version before its bad deployment, then open the revert PR."""
    base_url = settings.base_urls.get(environment)
    rollback = Rollback(
        railway=settings.railway(),
        app=settings.app(base_url) if base_url else None,
        github=settings.github if settings.github_token else None,
        clock=settings.clock,
        environment=environment,
        branch=ENVIRONMENT_BRANCHES.get(environment, environment),
        services=settings.services,
        web_service=settings.web_service,
        config=config,
        on_wait=on_wait,
    )
    return rollback.run(deployment_id=deployment_id)
