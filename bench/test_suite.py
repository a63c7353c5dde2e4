"""Benchmark: the wall time of the whole test suite (`make test`), as CI runs
it, with the ten slowest tests. Target: at most 5 minutes on this machine.

    python -m bench.test_suite
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

from bench import harness

TARGET_SECONDS = 300.0


def run() -> dict[str, Any]:
    started = time.monotonic()
    completed = subprocess.run(
        ["make", "--no-print-directory", "test", "PYTEST_ARGS=--durations=10"],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    output = completed.stdout + completed.stderr
    summary = next((line for line in reversed(output.splitlines()) if re.search(r"\d+ (passed|failed)", line)), "")
    counts = {
        kind: int(number) for number, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)
    }
    slowest = re.findall(r"^(\d+\.\d+)s (call|setup|teardown)\s+(\S+)", output, flags=re.MULTILINE)
    return {
        "name": "test_suite",
        "wall_seconds_suite": round(wall, 1),
        "exit_code": completed.returncode,
        "summary": summary.strip("= "),
        "counts": counts,
        "slowest": [{"seconds": float(seconds), "phase": phase, "test": test} for seconds, phase, test in slowest],
        "targets": {
            f"wall time <= {TARGET_SECONDS:g} s": wall <= TARGET_SECONDS,
            "suite passes": completed.returncode == 0,
        },
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"`make test` (the whole suite, real Postgres and Redis): **{result['wall_seconds_suite']:.0f} s** "
        f"(target <= {TARGET_SECONDS:g} s), exit code {result['exit_code']}: {result['summary']}.",
        "",
        "Slowest tests:",
        "",
        "| seconds | phase | test |",
        "|---|---|---|",
    ]
    lines += [f"| {item['seconds']:.2f} | {item['phase']} | `{item['test']}` |" for item in result["slowest"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
