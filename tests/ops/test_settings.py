"""Settings refuse to start unsafe outside debug mode, naming every problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN_NAMES = (
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "TG_WEBHOOK_SECRET",
    "DJANGO_ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "SANDBOX_ENABLED",
    "DJANGO_SETTINGS_MODULE",
    "BOT_TIME_ZONE",
    "BONUS_TIMEZONE",
)


def load_settings(
    tmp_path: Path,
    code: str = "import config.settings as s; print(s.DEBUG, s.TELEGRAM_API_URL, s.CELERY_BROKER_URL.split(':')[0])",
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Import config.settings in a fresh interpreter with exactly this environment."""
    clean = {key: value for key, value in os.environ.items() if key not in OWN_NAMES}
    clean.update(NANOBANANA_DATA_DIR=str(tmp_path), **env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_the_embedded_default_needs_nothing(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    debug, api_url, broker = result.stdout.split()
    assert (debug, api_url, broker) == ("True", "http://127.0.0.1:8000/sandbox", "filesystem")


def test_production_mode_names_every_problem_in_one_message(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="0")
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "Refusing to start with unsafe settings" in message
    for name in ("DJANGO_SECRET_KEY", "TG_WEBHOOK_SECRET", "ALLOWED_HOSTS", "TELEGRAM_BOT_TOKEN"):
        assert name in message


@pytest.mark.parametrize(
    ("missing", "named"),
    [("TG_WEBHOOK_SECRET", "TG_WEBHOOK_SECRET"), ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY")],
)
def test_each_missing_setting_is_refused_alone(tmp_path, missing, named):
    env = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k" * 50,
        "TG_WEBHOOK_SECRET": "s" * 32,
        "PUBLIC_BASE_URL": "https://bot.example.com",
        "TELEGRAM_BOT_TOKEN": "1:" + "t" * 35,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    }
    assert load_settings(tmp_path, **env).returncode == 0
    del env[missing]
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert named in result.stderr
    assert "k" * 50 not in result.stderr  # the message names settings, never their values


def test_a_real_token_turns_the_sandbox_off_and_talks_to_telegram(tmp_path):
    result = load_settings(tmp_path, TELEGRAM_BOT_TOKEN="1:" + "t" * 35)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "https://api.telegram.org"


def make_repo(root: Path, sha: str, *, packed: bool = False) -> Path:
    git = root / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    if packed:
        (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{sha} refs/heads/main\n")
    else:
        (git / "refs" / "heads" / "main").write_text(sha + "\n")
    return git


@pytest.mark.parametrize("packed", [False, True])
def test_the_version_is_read_from_a_clone(tmp_path, packed):
    from config.settings import _git_sha

    make_repo(tmp_path, "a" * 40, packed=packed)
    assert _git_sha(tmp_path) == "a" * 40


def test_the_version_is_read_from_a_worktree(tmp_path):
    from config.settings import _git_sha

    git = make_repo(tmp_path / "main", "a" * 40)
    worktree_git = git / "worktrees" / "feat"
    worktree_git.mkdir(parents=True)
    (worktree_git / "commondir").write_text("../..\n")
    (worktree_git / "HEAD").write_text("ref: refs/heads/feat\n")
    (git / "refs" / "heads" / "feat").write_text("b" * 40 + "\n")
    (tmp_path / "feat").mkdir()
    (tmp_path / "feat" / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert _git_sha(tmp_path / "feat") == "b" * 40


def test_the_version_is_unknown_without_git(tmp_path):
    from config.settings import _git_sha

    assert _git_sha(tmp_path) == "unknown"


def test_an_unknown_time_zone_is_refused_with_its_name(tmp_path):
    result = load_settings(tmp_path, BOT_TIME_ZONE="Moscow/Kremlin")
    assert result.returncode != 0
    assert "BOT_TIME_ZONE must be an IANA time zone" in result.stderr
    assert "'Moscow/Kremlin'" in result.stderr


def test_the_earlier_bonus_zone_name_still_sets_the_bot_zone(tmp_path):
    result = load_settings(tmp_path, "import config.settings as s; print(s.BOT_TIME_ZONE)", BONUS_TIMEZONE="Asia/Tokyo")
    assert result.stdout.strip() == "Asia/Tokyo", result.stderr
