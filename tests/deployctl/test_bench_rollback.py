"""The rollback benchmark's promise: a bad deploy is replaced by the previous
version within 60 simulated seconds, with default settings."""

from __future__ import annotations

from bench.deploy_rollback import LIMIT_SECONDS, run


def test_previous_version_serves_within_a_minute_of_a_bad_deploy():
    result = run()
    assert result["within_limit"]
    for scenario in result["scenarios"].values():
        assert scenario["previous_version_serving_seconds"] <= LIMIT_SECONDS
        assert scenario["detect_seconds"] < scenario["previous_version_serving_seconds"]
