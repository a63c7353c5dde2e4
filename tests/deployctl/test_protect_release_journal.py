"""Branch protection from YAML, the release PR, and the deploy journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deployctl import journal
from deployctl.errors import ConfigError
from deployctl.protect import load_rules, protect_apply, protect_verify
from deployctl.release import release_open

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / ".github" / "branch-protection.yml"


def test_the_repositorys_rules_protect_main_and_staging():
    rules = {rule.branch: rule for rule in load_rules(RULES)}
    assert set(rules) == {"main", "staging"}
    for rule in rules.values():
        assert rule.required_checks
        assert rule.required_linear_history
        assert rule.required_conversation_resolution
        assert not rule.allow_force_pushes
        assert not rule.allow_deletions


def test_every_required_check_is_a_job_name_in_ci():
    ci = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job_names = {job.get("name", key) for key, job in ci["jobs"].items()}
    for rule in load_rules(RULES):
        assert set(rule.required_checks) <= job_names, rule.branch


def test_apply_then_verify_shows_no_drift(settings, github_fake):
    result = protect_apply(settings.github(), load_rules(RULES))
    assert result.verdict.value == "pass"
    body = github_fake[0].protection["main"]
    assert body["allow_force_pushes"] == {"enabled": False}
    assert body["required_linear_history"] == {"enabled": True}


def test_verify_reports_each_drift(settings, github_fake):
    rules = load_rules(RULES)
    protect_apply(settings.github(), rules)
    main = github_fake[0].protection["main"]
    main["allow_force_pushes"] = {"enabled": True}
    main["required_status_checks"]["checks"] = main["required_status_checks"]["checks"][1:]
    main["required_status_checks"]["contexts"] = main["required_status_checks"]["contexts"][1:]
    del github_fake[0].protection["staging"]
    result = protect_verify(settings.github(), rules)
    assert result.verdict.value == "fail"
    assert "main: allow_force_pushes is True, want False" in result.lines
    assert any(line.startswith("main: required checks missing") for line in result.lines)
    assert "staging: not protected" in result.lines


def test_rules_with_unknown_keys_are_refused(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("branches:\n  main:\n    required_checks: [ci]\n    allow_force_push: false\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_rules(path)


def test_release_open_creates_the_pr_with_notes_since_the_last_release(settings, github_fake):
    fake = github_fake[0]
    fake.ahead[("main", "staging")] = 3
    fake.add_merged_pull(1, "Old feature", base="staging", head="feat/old", merged_at="2030-01-01T00:00:00Z")
    fake.add_merged_pull(2, "Release 1", base="main", head="staging", merged_at="2030-01-02T00:00:00Z")
    fake.add_merged_pull(3, "New feature", base="staging", head="feat/new", merged_at="2030-01-03T00:00:00Z")
    result = release_open(settings.github())
    [pull] = fake.open_pulls()
    assert (pull["base"]["ref"], pull["head"]["ref"]) == ("main", "staging")
    assert "New feature (#3" in pull["body"]
    assert "Old feature" not in pull["body"]
    assert result.data["action"] == "opened"
    assert not any(method == "PUT" and "merge" in path for method, path in fake.calls)


def test_release_open_updates_the_existing_pr_instead_of_opening_another(settings, github_fake):
    fake = github_fake[0]
    fake.ahead[("main", "staging")] = 1
    release_open(settings.github())
    fake.add_merged_pull(4, "Later fix", base="staging", head="fix/later", merged_at="2030-02-01T00:00:00Z")
    result = release_open(settings.github())
    assert result.data["action"] == "updated"
    [pull] = fake.open_pulls()
    assert "Later fix" in pull["body"]


def test_release_open_does_nothing_when_staging_has_nothing_new(settings, github_fake):
    result = release_open(settings.github())
    assert github_fake[0].open_pulls() == []
    assert result.title.startswith("Nothing to release")


def test_journal_appends_json_lines_and_markdown(tmp_path):
    report = {"command": "monitor", "verdict": "fail", "checks": [{"name": "health", "verdict": "fail"}]}
    for _ in range(2):
        record = journal.build_record(
            when=0.0,
            environment="production",
            version="abc",
            what="deploy",
            reports=[report],
            links=["https://ci.example/run/1"],
        )
        jsonl, markdown = journal.append(tmp_path, record)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 2
    assert rows[0]["verdicts"] == {"monitor": "fail"}
    assert rows[0]["checks"] == [{"command": "monitor", "name": "health", "verdict": "fail"}]
    assert markdown.read_text().count("## 1970-01-01T00:00:00.000Z production deploy `abc`") == 2
    assert "not passing: monitor/health" in markdown.read_text()
