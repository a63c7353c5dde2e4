"""`make run`'s Procfile: every process must agree on the web port.

The sandbox chat posts webhooks to settings.PORT and the worker builds
links from it; honcho hands each process its own PORT (5000, 5100, ... when
none is set), so each line has to pin PORT to WEB_PORT itself."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from honcho.environ import expand_processes, parse_procfile

ROOT = Path(__file__).resolve().parents[2]


def _stub(path: Path) -> None:
    path.write_text('#!/bin/sh\nprintf %s "$PORT"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_every_dev_process_sees_the_web_port(tmp_path: Path) -> None:
    procfile = parse_procfile((ROOT / "deploy" / "Procfile.dev").read_text())
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("uvicorn", "celery"):
        _stub(bin_dir / program)

    # honcho's own defaults: base port 5000, one more hundred per process type
    processes = expand_processes(procfile.processes, env={"WEB_PORT": "8123"}, port=5000)

    seen = {}
    for process in processes:
        env = {"PATH": os.environ["PATH"], **process.env}
        done = subprocess.run(
            ["sh", "-c", process.cmd], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        seen[process.name] = done.stdout
    assert seen == {"web.1": "8123", "worker.1": "8123", "beat.1": "8123"}
