"""Monitor verdict rules beyond the fault matrix."""

from __future__ import annotations

from dataclasses import replace

from deployctl.monitor import MonitorConfig, run_monitor
from tests.deployctl.fakes.world import Behaviour

VERSION = "5e" * 20


def test_a_failure_still_under_its_limit_when_the_window_ends_is_inconclusive(settings, world):
    world.deploy(VERSION, behaviour=Behaviour(worker_heartbeat_age=900))
    report = run_monitor(settings, environment="production", config=MonitorConfig(duration=20, failure_limit=5))
    assert report.rounds == 3
    assert report.verdict.value == "inconclusive"
    assert not report.rollback_recommended
    assert any(reason.startswith("fail: worker_heartbeat") for reason in report.reasons)


def test_growing_pending_updates_fail_the_webhook_check(settings, world):
    world.deploy(VERSION)
    world.webhook.pending_per_minute = 30
    report = run_monitor(settings, environment="production")
    assert report.verdict.value == "fail"
    assert any(reason.startswith("fail: webhook: pending updates growing") for reason in report.reasons)
    assert not report.rollback_recommended


def test_without_a_bot_token_the_webhook_check_is_inconclusive(settings, world):
    world.deploy(VERSION)
    report = run_monitor(replace(settings, bot_token=None), environment="production")
    assert report.verdict.value == "inconclusive"
    assert report.reasons == ["inconclusive: webhook: TELEGRAM_BOT_TOKEN is not set"]
