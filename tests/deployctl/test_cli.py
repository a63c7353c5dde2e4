"""The command line: exit codes, `--json`, `--notify`, one-line errors, no secrets."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from deployctl.cli import main
from deployctl.settings import Settings
from tests.deployctl.fakes.telegram import BOT_TOKEN, NOTIFY_CHAT_ID, NOTIFY_TOKEN
from tests.deployctl.fakes.world import Behaviour

GOOD = "c3" * 20
BAD = "d4" * 20


def run_cli(argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv, settings=settings)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_help_lists_every_command(settings, capsys):
    code, out, _ = run_cli(["--help"], settings, capsys)
    assert code == 0
    for command in ("smoke", "monitor", "rollback", "notify", "status", "journal", "webhook", "protect", "release"):
        assert command in out


@pytest.mark.parametrize(
    "command",
    [
        ["smoke"],
        ["monitor"],
        ["rollback"],
        ["notify"],
        ["status"],
        ["journal"],
        ["webhook", "set"],
        ["webhook", "info"],
        ["webhook", "verify"],
        ["protect", "apply"],
        ["protect", "verify"],
        ["release", "open"],
    ],
)
def test_every_subcommand_has_help_with_a_json_option(settings, capsys, command):
    code, out, _ = run_cli([*command, "--help"], settings, capsys)
    assert code == 0
    assert "--json" in out
    assert "Usage: deployctl" in out


def test_smoke_passes_when_the_expected_version_serves(settings, world, capsys):
    world.deploy(GOOD)
    url = settings.base_url("production")
    code, out, _ = run_cli(["smoke", url, "--expect-version", GOOD, "--json"], settings, capsys)
    assert code == 0
    payload = json.loads(out)
    assert payload["verdict"] == "pass"
    assert {check["name"] for check in payload["checks"]} >= {"health", "worker_heartbeat", "beat_heartbeat"}


def test_smoke_waits_for_the_new_version_then_checks_deep_health(settings, world, clock, capsys):
    world.deploy(GOOD)
    world.deploy(BAD, after=40)
    url = settings.base_url("production")
    start = clock.now()
    code, _out, _ = run_cli(["smoke", url, "--expect-version", BAD, "--json"], settings, capsys)
    assert code == 0
    assert 40 <= clock.now() - start <= 50


def test_smoke_fails_when_the_deep_check_fails(settings, world, capsys):
    world.deploy(GOOD, behaviour=Behaviour(beat_heartbeat_age=900))
    code, out, _ = run_cli(
        ["smoke", settings.base_url("production"), "--expect-version", GOOD, "--json"], settings, capsys
    )
    assert code == 1
    assert [c["name"] for c in json.loads(out)["checks"] if c["verdict"] == "fail"] == ["beat_heartbeat"]


def test_smoke_is_inconclusive_when_nothing_answers(settings, capsys):
    code, out, _ = run_cli(["smoke", "http://127.0.0.1:9", "--timeout", "30", "--json"], settings, capsys)
    assert code == 2
    assert json.loads(out)["verdict"] == "inconclusive"


def test_smoke_fails_when_an_old_version_keeps_serving(settings, world, capsys):
    world.deploy(GOOD)
    code, out, _ = run_cli(
        ["smoke", settings.base_url("production"), "--expect-version", BAD, "--timeout", "60"], settings, capsys
    )
    assert code == 1
    assert "after 60 s" in out


def test_monitor_writes_the_json_report_and_the_markdown_summary(settings, world, capsys, tmp_path):
    world.deploy(GOOD, behaviour=Behaviour(worker_heartbeat_age=900))
    report, summary = tmp_path / "monitor.json", tmp_path / "summary.md"
    code, _out, _ = run_cli(
        ["--report-file", str(report), "--summary-file", str(summary), "monitor", "--env", "production"],
        settings,
        capsys,
    )
    assert code == 1
    assert json.loads(report.read_text())["verdict"] == "fail"
    assert "worker_heartbeat" in summary.read_text()


def test_notify_flag_sends_the_result_to_the_ops_chat(settings, world, telegram_fake, capsys):
    world.deploy(GOOD)
    code, _, _ = run_cli(["status", "--env", "production", "--notify"], settings, capsys)
    assert code == 0
    [message] = telegram_fake[0].sent
    assert message["chat_id"] == NOTIFY_CHAT_ID
    assert GOOD[:12] in message["text"]


def test_notify_sends_the_text_and_never_a_secret(settings, telegram_fake, capsys):
    code, _, _ = run_cli(["notify", f"deploy done; token was {BOT_TOKEN}"], settings, capsys)
    assert code == 0
    [message] = telegram_fake[0].sent
    assert BOT_TOKEN not in message["text"]
    assert "deploy done" in message["text"]


def test_missing_configuration_is_one_line_and_exit_3(capsys):
    code, _out, err = run_cli(["status", "--env", "production"], Settings.from_env({}), capsys)
    assert code == 3
    assert err.strip() == "deployctl: error: RAILWAY_API_TOKEN is not set"


def test_an_unreachable_api_exits_4_without_the_token_in_the_message(settings, capsys):
    broken = replace(settings, telegram_api_url="http://127.0.0.1:9", retry=replace(settings.retry, attempts=2))
    code, out, err = run_cli(["notify", "hello"], broken, capsys)
    assert code == 4
    assert "telegram-notify: sendMessage: cannot reach the API" in err
    assert NOTIFY_TOKEN not in err + out
    assert len(err.strip().splitlines()) == 1


def test_a_rejected_token_exits_4_without_the_token_in_the_message(settings, capsys):
    wrong = replace(settings, notify_token="999:WRONG-token-value")
    code, out, err = run_cli(["notify", "hello"], wrong, capsys)
    assert code == 4
    assert "HTTP 401" in err
    assert "999:WRONG-token-value" not in err + out


def test_bad_arguments_exit_64(settings, capsys):
    code, _, err = run_cli(["monitor", "--env", "production", "--interval", "often"], settings, capsys)
    assert code == 64
    assert err.startswith("deployctl: usage error:")


def test_rollback_command_exits_0_and_reports_the_revert_pr(settings, world, github_fake, clock, capsys):
    world.deploy(GOOD)
    clock.sleep(600)
    github_fake[0].add_commit(GOOD)
    github_fake[0].add_commit(BAD, branch="main")
    world.deploy(BAD, behaviour=Behaviour(crash=True))
    code, out, _ = run_cli(["rollback", "--env", "production", "--json"], settings, capsys)
    payload = json.loads(out)
    assert code == 0
    assert payload["rolled_back"] is True
    assert payload["good_version"] == GOOD
    assert payload["revert_pr"].startswith("https://github.test/")
