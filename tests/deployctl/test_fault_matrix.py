"""The fault matrix: the post-deploy pipeline (monitor, then rollback when the
monitor recommends it) against every failure we know, on the simulated
Railway/GitHub/Telegram/app. Each scenario asserts the verdict, why, and the
actions taken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from deployctl.monitor import MonitorReport, run_monitor
from deployctl.rollback import RollbackReport, run_rollback
from deployctl.settings import Settings
from deployctl.verdict import Verdict
from tests.deployctl.fakes.github import FakeGitHub
from tests.deployctl.fakes.world import Behaviour, SimClock, SimDeployment, World

GOOD = "a1" * 20
BAD = "b2" * 20


@dataclass
class Outcome:
    monitor: MonitorReport
    rollback: RollbackReport | None
    good: dict[str, SimDeployment]
    bad: dict[str, SimDeployment]
    monitor_seconds: float


def pipeline(
    settings: Settings,
    world: World,
    github: FakeGitHub,
    clock: SimClock,
    *,
    bad: Behaviour,
    previous: Behaviour | None = None,
    bad_goes_live: bool = True,
    after_deploy: Callable[[World], None] | None = None,
) -> Outcome:
    """An hour of a good release, then the bad one, then what the workflow does."""
    good = world.deploy(GOOD, behaviour=previous or Behaviour())
    clock.sleep(3600)
    github.add_commit(GOOD)
    github.add_commit(BAD, branch="main")
    bad_deployments = world.deploy(BAD, behaviour=bad, live=bad_goes_live)
    if after_deploy:
        after_deploy(world)
    start = clock.now()
    report = run_monitor(settings, environment="production", deployment_id=bad_deployments["web"].id)
    monitor_seconds = clock.now() - start
    rollback = None
    if report.rollback_recommended:
        rollback = run_rollback(settings, environment="production", deployment_id=bad_deployments["web"].id)
    return Outcome(report, rollback, good, bad_deployments, monitor_seconds)


def failing_checks(outcome: Outcome) -> set[str]:
    return {reason.split(": ")[1] for reason in outcome.monitor.reasons if reason.startswith("fail")}


def assert_rolled_back_to_good(outcome: Outcome, world: World, github: FakeGitHub) -> None:
    assert outcome.rollback is not None
    assert outcome.rollback.rolled_back
    assert sorted(world.mutation_ids("deploymentRollback")) == sorted(d.id for d in outcome.good.values())
    assert world.mutation_ids("deploymentRedeploy") == []
    for service in ("web", "worker", "beat"):
        serving = world.serving("production", service)
        assert serving is not None
        assert serving.commit == GOOD
    assert outcome.rollback.revert_pr is not None
    [pull] = github.open_pulls()
    assert pull["base"]["ref"] == "main"
    assert pull["head"]["ref"] == f"revert/{BAD[:12]}"
    assert github.commits[github.refs[pull["head"]["ref"]]]["tree"]["sha"] == f"tree-of-{GOOD}"
    assert github.refs["main"] == BAD  # main itself is never written


def assert_no_action(outcome: Outcome, world: World, github: FakeGitHub) -> None:
    assert outcome.rollback is None
    assert world.mutations == []
    assert github.open_pulls() == []


@pytest.fixture
def run(
    settings: Settings, world: World, github_fake: tuple[FakeGitHub, str], clock: SimClock
) -> Callable[..., Outcome]:
    def _run(**kwargs: object) -> Outcome:
        return pipeline(settings, world, github_fake[0], clock, **kwargs)  # type: ignore[arg-type]

    return _run


def test_healthy_release_passes_after_the_whole_window_and_nothing_is_done(run, world, github_fake):
    outcome = run(bad=Behaviour())
    assert outcome.monitor.verdict is Verdict.PASS
    assert outcome.monitor_seconds >= 290
    assert not outcome.monitor.rollback_recommended
    assert_no_action(outcome, world, github_fake[0])


def test_crash_on_boot_fails_fast_and_rolls_every_service_back(run, world, github_fake):
    outcome = run(bad=Behaviour(crash=True))
    assert outcome.monitor.verdict is Verdict.FAIL
    assert "health" in failing_checks(outcome) or "error_logs" in failing_checks(outcome)
    assert outcome.monitor_seconds <= 30
    assert_rolled_back_to_good(outcome, world, github_fake[0])


def test_500s_after_boot_fail_on_the_5xx_rate_and_roll_back(run, world, github_fake):
    outcome = run(bad=Behaviour(http_500_after=60))
    assert outcome.monitor.verdict is Verdict.FAIL
    assert failing_checks(outcome) == {"http_5xx"}
    assert 60 <= outcome.monitor_seconds <= 120
    assert_rolled_back_to_good(outcome, world, github_fake[0])


def test_errors_only_in_the_previous_deployments_logs_pass(run, world, github_fake, railway_fake):
    outcome = run(bad=Behaviour(), previous=Behaviour(errors_per_minute=10))
    assert outcome.monitor.verdict is Verdict.PASS
    assert_no_action(outcome, world, github_fake[0])
    # The previous deployment really did log errors: reading its logs would have failed the release.
    old = outcome.good["web"]
    assert any('"error"' in line["message"] for line in world.log_lines(old, 0, float("inf")))
    assert "deploymentLogs" in railway_fake[0].calls


def test_stderr_lines_with_a_non_error_level_are_not_counted(run, world, github_fake):
    outcome = run(bad=Behaviour())
    error_logs = next(check for check in outcome.monitor.checks if check.name == "error_logs")
    assert error_logs.reason == "0 error lines"
    assert any(line["severity"] == "error" for line in world.log_lines(outcome.bad["web"], 0, float("inf")))


def test_a_slow_trickle_of_errors_fails_once_past_the_limit(run, world, github_fake):
    outcome = run(bad=Behaviour(errors_per_minute=1))
    assert outcome.monitor.verdict is Verdict.FAIL
    assert failing_checks(outcome) == {"error_logs"}
    assert outcome.monitor_seconds >= 60  # not at the first error: only past the limit
    assert_rolled_back_to_good(outcome, world, github_fake[0])


@pytest.mark.parametrize(
    ("behaviour", "check"),
    [
        (Behaviour(worker_heartbeat_age=900), "worker_heartbeat"),
        (Behaviour(beat_heartbeat_age=900), "beat_heartbeat"),
    ],
)
def test_a_stale_heartbeat_fails_after_the_failure_limit_and_rolls_back(run, world, github_fake, behaviour, check):
    outcome = run(bad=behaviour)
    assert outcome.monitor.verdict is Verdict.FAIL
    assert failing_checks(outcome) == {check}
    assert outcome.monitor.rounds == 3  # the default failure limit, no earlier
    assert_rolled_back_to_good(outcome, world, github_fake[0])


def test_a_wrong_webhook_url_fails_without_a_rollback(run, world, github_fake):
    def point_webhook_elsewhere(world: World) -> None:
        world.webhook.url = "https://old-host.example.test/api/telegram/webhook"

    outcome = run(bad=Behaviour(), after_deploy=point_webhook_elsewhere)
    assert outcome.monitor.verdict is Verdict.FAIL
    assert failing_checks(outcome) == {"webhook"}
    assert not outcome.monitor.rollback_recommended
    assert_no_action(outcome, world, github_fake[0])


def test_old_version_still_serving_waits_for_the_version_timeout_then_fails(run, world, github_fake):
    outcome = run(bad=Behaviour(), bad_goes_live=False)
    assert outcome.monitor.verdict is Verdict.FAIL
    assert failing_checks(outcome) == {"version"}
    assert 120 <= outcome.monitor_seconds <= 140
    assert not outcome.monitor.rollback_recommended  # the previous version still serves
    assert_no_action(outcome, world, github_fake[0])


def test_railway_api_down_is_inconclusive_and_nothing_is_rolled_back(run, world, github_fake):
    def take_railway_down(world: World) -> None:
        world.railway_down = True

    outcome = run(bad=Behaviour(crash=False), after_deploy=take_railway_down)
    assert outcome.monitor.verdict is Verdict.INCONCLUSIVE
    assert any("railway" in reason or "cannot read" in reason for reason in outcome.monitor.reasons)
    assert_no_action(outcome, world, github_fake[0])


def test_github_down_during_the_revert_still_rolls_back_and_reports_it(run, world, github_fake):
    def take_github_down(world: World) -> None:
        world.github_down = True

    outcome = run(bad=Behaviour(crash=True), after_deploy=take_github_down)
    assert outcome.monitor.verdict is Verdict.FAIL
    assert outcome.rollback is not None
    assert outcome.rollback.rolled_back
    assert sorted(world.mutation_ids("deploymentRollback")) == sorted(d.id for d in outcome.good.values())
    assert world.serving("production", "web").commit == GOOD
    assert outcome.rollback.revert_pr is None
    assert "503" in (outcome.rollback.revert_error or "")
    assert outcome.rollback.exit_code == 2
    assert "revert PR NOT opened" in outcome.rollback.to_markdown()


def test_monitor_report_renders_markdown_and_json_with_the_reasons(run):
    outcome = run(bad=Behaviour(worker_heartbeat_age=900))
    markdown = outcome.monitor.to_markdown()
    payload = outcome.monitor.to_json()
    assert "**fail**" in markdown
    assert "worker_heartbeat" in markdown
    assert payload["verdict"] == "fail"
    assert payload["rollback_recommended"] is True
    assert payload["target"]["expected_version"] == BAD
