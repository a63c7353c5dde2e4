"""The container, compose and Railway files, checked statically (no Docker
engine here) and kept consistent with the Makefile's process targets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("web", "worker", "beat")
START = ["deploy/process.sh"]


def make_targets(*paths: Path) -> dict[str, str]:
    """Targets with a `## help` comment, from the Makefile and the files it includes."""
    targets: dict[str, str] = {}
    for path in paths:
        for match in re.finditer(r"^([a-zA-Z_-]+):[^\n#]*## (.+)$", path.read_text(), re.MULTILINE):
            targets[match.group(1)] = match.group(2)
    return targets


def make_recipe(target: str) -> str:
    match = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, f"no recipe for {target}"
    return match.group(1)


def railway(service: str) -> dict:
    return json.loads((ROOT / "deploy" / "railway" / f"{service}.json").read_text())


def longest_task_time_limit() -> int:
    limits = [
        int(value)
        for path in (ROOT / "nanobanana").rglob("*.py")
        for value in re.findall(r"\btime_limit\s*=\s*(\d+)", path.read_text())
    ]
    return max(limits, default=300)


def test_the_makefile_has_every_process_target():
    targets = make_targets(ROOT / "Makefile")
    assert set(PROCESSES) | {"release"} <= set(targets)


@pytest.mark.parametrize("service", PROCESSES)
def test_each_railway_service_starts_its_process_like_the_makefile_does(service):
    config = railway(service)
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "deploy/Dockerfile"}
    assert config["deploy"]["startCommand"].split() == [*START, service]
    assert f"deploy/process.sh {service}" in make_recipe(service)


@pytest.mark.parametrize("service", PROCESSES)
def test_railway_numbers_are_numbers_and_a_restart_policy_is_set(service):
    deploy = railway(service)["deploy"]
    for key in ("healthcheckTimeout", "restartPolicyMaxRetries", "overlapSeconds", "drainingSeconds", "numReplicas"):
        if key in deploy:
            assert isinstance(deploy[key], int), key
    assert deploy["restartPolicyType"] in {"ON_FAILURE", "ALWAYS"}


def test_only_web_runs_migrations_before_deploy_and_is_health_checked():
    web = railway("web")["deploy"]
    assert web["preDeployCommand"] == [" ".join([*START, "release"])]
    assert web["healthcheckPath"] == "/api/health"
    for service in ("worker", "beat"):
        assert "preDeployCommand" not in railway(service)["deploy"]
        assert "healthcheckPath" not in railway(service)["deploy"]


def test_worker_draining_outlasts_the_longest_task_and_celerys_warm_shutdown():
    assert railway("worker")["deploy"]["drainingSeconds"] >= max(300, longest_task_time_limit())


def test_beat_never_runs_twice():
    deploy = railway("beat")["deploy"]
    assert deploy["numReplicas"] == 1
    assert deploy["overlapSeconds"] == 0


def test_the_dockerfile_is_multi_stage_slim_non_root_and_defaults_to_web():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) >= 2
    assert all("slim" in stage for stage in stages)
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user
    assert user[-1] not in {"root", "0"}
    assert json.loads(re.findall(r"^CMD (.+)$", text, re.MULTILINE)[-1]) == [*START, "web"]
    assert "ENTRYPOINT" not in text  # Railway's startCommand replaces CMD as a whole


def test_compose_runs_each_process_through_the_start_script_with_its_services():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    for process in (*PROCESSES, "release"):
        assert services[process]["command"] == [*START, process]
    assert {"postgres", "redis", "storage"} <= set(services)
    grace = int(services["worker"]["stop_grace_period"].rstrip("s"))
    assert grace >= railway("worker")["deploy"]["drainingSeconds"]


def test_every_delivery_make_target_documents_itself():
    text = (ROOT / "deploy" / "deploy.mk").read_text()
    declared = re.findall(r"^([a-z-]+):", text, re.MULTILINE)
    documented = make_targets(ROOT / "deploy" / "deploy.mk")
    assert declared
    assert set(declared) == set(documented)
    assert "-include deploy/deploy.mk" in (ROOT / "Makefile").read_text()


def test_the_image_context_excludes_secrets_and_local_state():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", ".data"} <= ignored


FAKE_PROCESS = """#!/bin/sh
# Stands in for uvicorn/celery/python: records its argv and the signal it gets.
echo "$0 $*" > "$RECORD"
trap 'echo TERM >> "$RECORD"; exit 0' TERM
while :; do sleep 0.05; done
"""


@pytest.fixture
def fake_bin(tmp_path):
    for name in ("uvicorn", "celery", "python"):
        tool = tmp_path / name
        tool.write_text(FAKE_PROCESS)
        tool.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(("process", "program"), [("web", "uvicorn"), ("worker", "celery"), ("beat", "celery")])
def test_the_started_process_replaces_the_script_and_gets_sigterm_itself(fake_bin, tmp_path, process, program):

    record = tmp_path / "record"
    env = {**os.environ, "VENV_BIN": str(fake_bin), "RECORD": str(record), "PORT": "8123"}
    started = subprocess.Popen([str(ROOT / "deploy" / "process.sh"), process], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 10
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert record.read_text().startswith(f"{fake_bin / program} ")
        started.send_signal(signal.SIGTERM)  # what Docker and Railway do to PID 1
        assert started.wait(timeout=10) == 0
        assert record.read_text().splitlines()[-1] == "TERM"
    finally:
        started.kill()


def test_the_start_script_refuses_an_unknown_process():
    result = subprocess.run([str(ROOT / "deploy" / "process.sh"), "shell"], capture_output=True, text=True)
    assert result.returncode == 64
    assert "usage: deploy/process.sh web|worker|beat|release" in result.stderr
