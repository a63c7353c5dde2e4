"""Rollback target choice and the Railway mutations used, beyond the fault matrix."""

from __future__ import annotations

from deployctl.clients.railway import Deployment
from deployctl.monitor import run_monitor
from deployctl.rollback import choose_target, run_rollback
from tests.deployctl.fakes.world import Behaviour

GOOD = "e5" * 20
FAILED = "f6" * 20
BAD = "a7" * 20


def deployment(id: str, commit: str, status: str, created: float, *, rollback: bool = True) -> Deployment:
    return Deployment(id, "web", status, created, commit, rollback, True)


def test_choose_target_skips_failed_deployments_and_other_builds_of_the_bad_commit():
    bad = deployment("d4", BAD, "CRASHED", 40)
    deployments = [
        bad,
        deployment("d3", BAD, "REMOVED", 30),  # an earlier build of the same bad commit
        deployment("d2", FAILED, "FAILED", 20),  # never served
        deployment("d1", GOOD, "REMOVED", 10),
    ]
    assert choose_target(deployments, bad) == deployments[3]


def test_choose_target_returns_none_when_nothing_earlier_served():
    bad = deployment("d2", BAD, "SUCCESS", 20)
    assert choose_target([bad, deployment("d1", FAILED, "FAILED", 10)], bad) is None


def test_out_of_retention_is_redeployed_from_source_and_waited_for(settings, world, clock, github_fake):
    good = world.deploy(GOOD, can_rollback=False)
    clock.sleep(3600)
    github_fake[0].add_commit(GOOD)
    github_fake[0].add_commit(BAD, branch="main")
    world.deploy(BAD, behaviour=Behaviour(crash=True))
    start = clock.now()
    report = run_rollback(settings, environment="production")
    assert report.rolled_back
    assert world.mutation_ids("deploymentRollback") == []
    assert sorted(world.mutation_ids("deploymentRedeploy")) == sorted(d.id for d in good.values())
    assert all(v["usePreviousImageTag"] is False for _, v in world.mutations)
    assert {service.action for service in report.services} == {"redeploy"}
    assert clock.now() - start >= world.redeploy_delay
    assert world.serving("production", "web").commit == GOOD


def test_rollback_fails_and_opens_no_pr_when_there_is_nothing_to_roll_back_to(settings, world, github_fake):
    world.deploy(BAD, behaviour=Behaviour(crash=True))
    report = run_rollback(settings, environment="production")
    assert not report.rolled_back
    assert report.exit_code == 1
    assert world.mutations == []
    assert github_fake[0].open_pulls() == []
    assert {service.detail for service in report.services} == {"no earlier deployment that served"}


def test_a_service_not_redeployed_by_the_bad_release_is_left_alone(settings, world, clock, github_fake):
    good = world.deploy(GOOD)
    clock.sleep(600)
    github_fake[0].add_commit(GOOD)
    github_fake[0].add_commit(BAD, branch="main")
    world.deploy(BAD, services=("web",), behaviour=Behaviour(crash=True))
    report = run_rollback(settings, environment="production")
    assert report.rolled_back
    assert world.mutation_ids("deploymentRollback") == [good["web"].id]
    assert {s.service: s.status for s in report.services} == {"web": "done", "worker": "skipped", "beat": "skipped"}


def test_the_revert_pr_is_not_opened_when_main_moved_past_the_bad_commit(settings, world, clock, github_fake):
    world.deploy(GOOD)
    clock.sleep(600)
    github_fake[0].add_commit(GOOD)
    github_fake[0].add_commit(BAD)
    github_fake[0].add_commit("0" * 40, branch="main")
    world.deploy(BAD, behaviour=Behaviour(crash=True))
    report = run_rollback(settings, environment="production")
    assert report.rolled_back
    assert report.revert_pr is None
    assert "moved past" in (report.revert_error or "")
    assert report.exit_code == 2


def test_a_second_rollback_run_reuses_the_open_revert_pr(settings, world, clock, github_fake):
    world.deploy(GOOD)
    clock.sleep(600)
    github_fake[0].add_commit(GOOD)
    github_fake[0].add_commit(BAD, branch="main")
    bad = world.deploy(BAD, behaviour=Behaviour(crash=True))
    first = run_rollback(settings, environment="production", deployment_id=bad["web"].id)
    second = run_rollback(settings, environment="production", deployment_id=bad["web"].id)
    assert first.revert_pr == second.revert_pr
    assert len(github_fake[0].open_pulls()) == 1


def test_railway_rate_limits_are_waited_out_with_retry_after(settings, world, clock, railway_fake):
    world.deploy(GOOD)
    world.railway_rate_limited = 2
    report = run_monitor(settings, environment="production")
    assert report.verdict.value == "pass"
    assert railway_fake[0].calls[0] == "project"
    assert world.railway_rate_limited == 0
    # 30 monitor intervals of 10 s (rounds at 0..300 s), plus two waits of the fake's Retry-After (3 s).
    assert clock.slept == 30 * 10 + 2 * 3
