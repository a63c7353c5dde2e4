"""Benchmark: time from a bad production deploy to the previous version
serving again, with deployctl's default settings, in the simulated setup
(local fakes of Railway, GitHub, Telegram and the app on a simulated clock;
Railway takes 15 s to serve a rolled-back image). Target: at most 60 s.

    python -m bench.deploy_rollback
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from deployctl.monitor import run_monitor
from deployctl.rollback import run_rollback
from deployctl.settings import Settings
from tests.deployctl.fakes.app import FakeApp
from tests.deployctl.fakes.github import REPOSITORY, FakeGitHub
from tests.deployctl.fakes.github import TOKEN as GITHUB_TOKEN
from tests.deployctl.fakes.railway import TOKEN as RAILWAY_TOKEN
from tests.deployctl.fakes.railway import FakeRailway
from tests.deployctl.fakes.server import FakeServer
from tests.deployctl.fakes.telegram import BOT_TOKEN, FakeTelegram
from tests.deployctl.fakes.world import Behaviour, SimClock, World

LIMIT_SECONDS = 60.0
GOOD = "90" * 20
BAD = "0b" * 20
SCENARIOS = {
    "crash_on_boot": Behaviour(crash=True),
    "stale_worker_heartbeat": Behaviour(worker_heartbeat_age=900),
    "http_500_at_boot": Behaviour(http_500_after=0),
}


def measure(behaviour: Behaviour) -> dict[str, float]:
    """One bad deploy, monitored and rolled back with default settings."""
    clock = SimClock()
    world = World(clock)
    github = FakeGitHub(world)
    servers = [
        FakeServer(FakeRailway(world)),
        FakeServer(github),
        FakeServer(FakeTelegram(world)),
        FakeServer(FakeApp(world)),
    ]
    railway_url, github_url, telegram_url, app_url = (server.url for server in servers)
    try:
        world.webhook.url = app_url + "/api/telegram/webhook"
        settings = replace(
            Settings(),
            clock=clock,
            railway_token=RAILWAY_TOKEN,
            railway_project_id=world.project_id,
            railway_url=railway_url,
            github_token=GITHUB_TOKEN,
            github_repository=REPOSITORY,
            github_api_url=github_url,
            telegram_api_url=telegram_url,
            bot_token=BOT_TOKEN,
            base_urls={"production": app_url},
        )
        world.deploy(GOOD)
        clock.sleep(3600)
        github.add_commit(GOOD)
        github.add_commit(BAD, branch="main")
        bad = world.deploy(BAD, behaviour=behaviour)
        bad_live = clock.now()
        report = run_monitor(settings, environment="production")
        detected = clock.now()
        if not report.rollback_recommended:
            raise RuntimeError(f"the monitor did not call for a rollback: {report.reasons}")
        rollback = run_rollback(settings, environment="production", deployment_id=bad["web"].id)
        confirmed = clock.now()
        serving = world.serving("production", "web")
        if not rollback.rolled_back or serving is None or serving.commit != GOOD or serving.live_at is None:
            raise RuntimeError(f"the rollback did not bring {GOOD} back: {rollback.to_json()}")
        return {
            "detect_seconds": detected - bad_live,
            "previous_version_serving_seconds": serving.live_at - bad_live,
            "rollback_confirmed_seconds": confirmed - bad_live,
        }
    finally:
        for server in servers:
            server.close()


def run() -> dict[str, Any]:
    """The measured numbers per scenario, the worst case and whether it is within the limit."""
    results = {name: measure(behaviour) for name, behaviour in SCENARIOS.items()}
    worst = max(result["rollback_confirmed_seconds"] for result in results.values())
    return {
        "name": "deploy_rollback",
        "unit": "simulated seconds",
        "limit_seconds": LIMIT_SECONDS,
        "worst_rollback_confirmed_seconds": worst,
        "within_limit": worst <= LIMIT_SECONDS,
        "scenarios": results,
        "targets": {f"previous version confirmed serving within {LIMIT_SECONDS:g} s": worst <= LIMIT_SECONDS},
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "Time from a bad production deploy going live to the previous version serving",
        "again, with deployctl's default settings, on a simulated clock (Railway takes",
        f"15 s to serve a rolled-back image). Limit: {result['limit_seconds']:g} s.",
        "",
        "| scenario | detected (s) | previous version serving (s) | rollback confirmed (s) |",
        "|---|---|---|---|",
    ]
    for name, numbers in result["scenarios"].items():
        lines.append(
            f"| {name} | {numbers['detect_seconds']:.1f} | {numbers['previous_version_serving_seconds']:.1f} "
            f"| {numbers['rollback_confirmed_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
