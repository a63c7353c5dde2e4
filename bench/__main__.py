"""Run every benchmark and write docs/benchmarks.md.

    make bench                  # full durations
    BENCH_QUICK=1 make bench    # shorter durations, same code paths
    python -m bench webhook_ingest sender   # only some; the others keep their last results
    python -m bench --render                # rewrite the file from docs/benchmarks.json only

Each benchmark module has `run() -> dict` (its numbers, the anchors measured
in the same run, and `targets`: each target's name -> met or not) and may
have `markdown(result) -> str` for its section. A benchmark that fails is
reported as failed in the file; the others still run. The raw results are
also written to docs/benchmarks.json.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import harness

MODULES = ["webhook_ingest", "sender", "overhead", "video_jobs", "test_suite", "deploy_rollback"]
OUT_MD = harness.ROOT / "docs" / "benchmarks.md"
OUT_JSON = harness.ROOT / "docs" / "benchmarks.json"
ANALYSIS = harness.ROOT / "bench" / "analysis.md"


def _available(name: str) -> bool:
    return (Path(__file__).parent / f"{name}.py").exists()


def run_one(name: str, machine: dict[str, Any]) -> dict[str, Any]:
    module = importlib.import_module(f"bench.{name}")
    measured = {key: machine[key] for key in ("date", "git_sha", "mode", "cpu")}
    measured["load_average"] = harness.load_average()
    started = time.monotonic()
    try:
        result = dict(module.run())
    except Exception as error:  # a broken benchmark must not hide the others
        result = {"name": name, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    result["measured"] = measured
    render = getattr(module, "markdown", None)
    if "error" not in result and render is not None:
        result["markdown"] = render(result)
    return result


def _targets(result: dict[str, Any]) -> str:
    targets = result.get("targets") or {}
    if "error" in result:
        return "**failed to run**"
    if not targets:
        return "n/a"
    return "<br>".join(f"{'met' if met else '**missed**'}: {name}" for name, met in targets.items())


def _measured(result: dict[str, Any]) -> str:
    measured = result.get("measured")
    if not measured:
        return "unknown"
    return (
        f"{measured['date']}, {str(measured['git_sha']).removeprefix('commit ')[:12]}, "
        f"{measured['mode'].split(' ')[0]}, "
        f"load {measured.get('load_average', '?')}, "
        f"{measured.get('cpu', 'CPU not recorded')}"
    )


def _previous() -> dict[str, dict[str, Any]]:
    """The last results of every benchmark, by name (none if the file is unreadable)."""
    try:
        raw = json.loads(OUT_JSON.read_text())
        return {result["name"]: result for result in raw["results"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _previous_machine() -> dict[str, Any]:
    return dict(json.loads(OUT_JSON.read_text())["machine"])


def _generic(result: dict[str, Any]) -> str:
    shown = {key: value for key, value in result.items() if key not in ("markdown", "targets", "traceback")}
    return "```json\n" + json.dumps(shown, indent=2, ensure_ascii=False) + "\n```\n"


def markdown(machine: dict[str, Any], results: list[dict[str, Any]]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand. Each benchmark",
        "measures its anchor in the same run and reports ratios, because absolute",
        "numbers on a shared machine drift. Mode: **" + machine["mode"] + "**.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    keys = ("date", "git_sha", "cpu", "cores", "memory_gib", "os", "python", "postgres", "redis", "mode")
    lines += [f"| {key} | {machine[key]} |" for key in keys]
    lines += [
        "",
        "## Summary",
        "",
        "A benchmark run on its own (`python -m bench NAME`) replaces only its own section; the others keep",
        "their last results, each with when, at which commit, in which mode, under what machine load and on",
        "which CPU it ran (the machine above is the last run's; sessions may get other hardware).",
        "",
        "| benchmark | targets | wall time | measured |",
        "|---|---|---|---|",
    ]
    for result in results:
        lines.append(f"| {result['name']} | {_targets(result)} | {result['wall_seconds']} s | {_measured(result)} |")
    for result in results:
        lines += ["", f"## {result['name']}", ""]
        if "error" in result:
            lines += ["Failed to run:", "", "```", result.get("traceback", result["error"]).rstrip(), "```"]
        else:
            lines.append(result.get("markdown") or _generic(result))
    if ANALYSIS.exists():
        lines += ["", ANALYSIS.read_text().rstrip()]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    render_only = "--render" in argv
    argv = [arg for arg in argv if arg != "--render"]
    names = [] if render_only else argv or [name for name in MODULES if _available(name)]
    unknown = [name for name in names if not _available(name)]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(MODULES)}", file=sys.stderr)
        return 2
    kept = _previous()
    machine = _previous_machine() if render_only else harness.machine()
    print(f"benchmarks ({machine['mode']}): {', '.join(names) or 'none, rendering only'}", flush=True)
    for name in names:
        print(f"- {name} ...", end=" ", flush=True)
        result = run_one(name, machine)
        kept[name] = result
        print("failed" if "error" in result else f"done in {result['wall_seconds']} s", flush=True)
        if "error" in result:
            print(result["traceback"], file=sys.stderr)
    results = [kept[name] for name in MODULES if name in kept]
    for result in results:
        render = getattr(importlib.import_module(f"bench.{result['name']}"), "markdown", None)
        if "error" not in result and "markdown" not in result and render is not None:
            # A result kept from an older run may lack what today's section shows.
            with contextlib.suppress(KeyError, TypeError, ValueError):
                result["markdown"] = render(result)
    OUT_MD.write_text(markdown(machine, results))
    raw = {"machine": machine, "results": [{k: v for k, v in r.items() if k != "markdown"} for r in results]}
    OUT_JSON.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT_MD.relative_to(harness.ROOT)} and {OUT_JSON.relative_to(harness.ROOT)}")
    return 1 if any("error" in kept[name] for name in names) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
