"""Benchmark: webhook ingest. 100 concurrent connections post Telegram
updates with unique `update_id`s for 20 s (5 s quick) at

- a bare ASGI app answering 200 (the machine's ceiling under this client),
- aiogram 3's aiohttp `SimpleRequestHandler` with a no-op router (the anchor),
- our web process (uvicorn config.asgi:application, Postgres, Redis), where
  every 200 means the update is committed to the inbox and queued.

Afterwards the inbox must hold exactly the updates answered 2xx (none lost,
none twice) and Redis must hold every stored update queued once (a chunk of ids to a task).
Target: at least 1.0x the aiogram anchor, p99 at most 100 ms.

    python -m bench.webhook_ingest
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench import harness

CONNECTIONS = 100
WARMUP_SECONDS = 2.0
WARMUP_FIRST_ID = 1
MEASURED_FIRST_ID = 10_000_000
TARGET_P99_MS = 100.0
# The production settings recommended for 2 cores (see docs/benchmarks.md).
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
WEB_EXTRA = ("--loop", "uvloop", "--http", "httptools")
# Overrides of the Makefile's web settings, for trying others: BENCH_WEB_MAKE_ARGS="WEB_DB_POOL=20".
WEB_MAKE_ARGS = tuple(os.environ.get("BENCH_WEB_MAKE_ARGS", "").split())


def duration() -> float:
    return 5.0 if harness.quick() else 20.0


def load(url: str, *, first_id: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            harness.PYTHON,
            "-m",
            "bench.load",
            "--url",
            url,
            "--connections",
            str(CONNECTIONS),
            "--duration",
            str(seconds),
            "--first-id",
            str(first_id),
            "--secret",
            harness.WEBHOOK_SECRET,
        ],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def _served(process: harness.Process, url: str, *, first_id: int, seconds: float, ready: str, expect: tuple[int, ...]):
    try:
        harness.wait_http(process, ready, expect=expect)
        # Warm-up, not counted: every worker boots, opens its connections and
        # imports what the first request needs (ids below the measured range).
        load(url, first_id=WARMUP_FIRST_ID, seconds=WARMUP_SECONDS)
        result = load(url, first_id=first_id, seconds=seconds)
        result["server_rss_mib"] = round(process.rss_mib(), 1)
        return result
    finally:
        process.stop()


def run_bare(log_dir: Path, seconds: float) -> dict[str, Any]:
    port = harness.free_port()
    process = harness.start(
        "bare-asgi",
        harness.uvicorn_command("bench.apps.bare:application", port=port, workers=WEB_WORKERS, extra=WEB_EXTRA),
        env=dict(os.environ),
        log_dir=log_dir,
    )
    url = f"http://127.0.0.1:{port}{harness.WEBHOOK_PATH}"
    return _served(process, url, first_id=MEASURED_FIRST_ID, seconds=seconds, ready=url, expect=(200,))


def run_aiogram(log_dir: Path, seconds: float) -> dict[str, Any]:
    port = harness.free_port()
    process = harness.start(
        "aiogram-anchor",
        [
            harness.PYTHON,
            "-m",
            "bench.apps.aiogram_hook",
            "--port",
            str(port),
            "--workers",
            str(WEB_WORKERS),
            "--secret",
            harness.WEBHOOK_SECRET,
        ],
        env=dict(os.environ),
        log_dir=log_dir,
    )
    url = f"http://127.0.0.1:{port}{harness.WEBHOOK_PATH}"
    return _served(process, url, first_id=MEASURED_FIRST_ID, seconds=seconds, ready=url, expect=(405,))


def _queued_update_ids(client: Any) -> list[int]:
    """The update ids in the `updates` queue's task messages (kombu's JSON
    envelope around Celery's base64 body of [args, kwargs, embed])."""
    ids: list[int] = []
    for raw in client.lrange("updates", 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        task = message["headers"]["task"]
        ids.extend(args[0] if task == "bot.handle_updates" else [args[0]])
    return ids


def run_ours(services: harness.Services, log_dir: Path, seconds: float) -> dict[str, Any]:
    port = harness.free_port()
    # Exactly the production command (`make web`: Dockerfile CMD, Railway).
    process = harness.start(
        "web",
        ["make", "--no-print-directory", "web", f"PORT={port}", f"WEB_CONCURRENCY={WEB_WORKERS}", *WEB_MAKE_ARGS],
        env=services.env(),
        log_dir=log_dir,
    )
    first_id = MEASURED_FIRST_ID
    url = f"http://127.0.0.1:{port}{harness.WEBHOOK_PATH}"
    result = _served(
        process, url, first_id=first_id, seconds=seconds, ready=f"http://127.0.0.1:{port}/api/health", expect=(200,)
    )
    acked = {i for first, last in result.pop("acked_ranges") for i in range(first, last + 1)}
    stored = {row[0] for row in services.sql("SELECT update_id FROM bot_inboxupdate WHERE update_id >= %s", first_id)}
    every_row = [row[0] for row in services.sql("SELECT update_id FROM bot_inboxupdate")]
    # Every stored row queued once, warm-up included (a chunk of ids to a task).
    queued = _queued_update_ids(services.redis())
    queued_once = len(queued) == len(every_row) and set(queued) == set(every_row)
    result.update(
        {
            "stored_rows": len(stored),
            "acked_but_not_stored": len(acked - stored),
            "stored_but_not_acked": len(stored - acked),
            "queued_once_per_row": queued_once,
            "stored_equals_sent": stored == acked and result["sent"] == result["ok"],
            "server_errors_logged": process.output().count('"level": "error"'),
        }
    )
    return result


def run() -> dict[str, Any]:
    seconds = duration()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    bare = run_bare(log_dir, seconds)
    bare.pop("acked_ranges")
    aiogram = run_aiogram(log_dir, seconds)
    aiogram.pop("acked_ranges")
    with harness.services() as services:
        ours = run_ours(services, log_dir, seconds)
    ratio = ours["rate_per_s"] / aiogram["rate_per_s"] if aiogram["rate_per_s"] else 0.0
    return {
        "name": "webhook_ingest",
        "connections": CONNECTIONS,
        "duration_s": seconds,
        "web_workers": WEB_WORKERS,
        "server_settings": "uvicorn --workers {} {}".format(WEB_WORKERS, " ".join(WEB_EXTRA)),
        "bare_asgi": bare,
        "aiogram_anchor": aiogram,
        "nanobanana": ours,
        "ratio_vs_aiogram": round(ratio, 3),
        "ratio_vs_bare": round(ours["rate_per_s"] / bare["rate_per_s"], 3) if bare["rate_per_s"] else 0.0,
        "targets": {
            "ratio_vs_aiogram >= 1.0": ratio >= 1.0,
            f"p99 <= {TARGET_P99_MS:g} ms": ours["p99_ms"] <= TARGET_P99_MS,
            "stored rows = sent, queued once each": ours["stored_equals_sent"] and ours["queued_once_per_row"],
        },
        "logs": str(log_dir),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))


def markdown(result: dict[str, Any]) -> str:
    rows = [
        ("bare ASGI app (ceiling)", result["bare_asgi"]),
        ("aiogram SimpleRequestHandler (anchor)", result["aiogram_anchor"]),
    ]
    rows.append(("NanoBanana webhook (stored in Postgres, queued in Redis)", result["nanobanana"]))
    ours = result["nanobanana"]
    lines = [
        f"{result['connections']} concurrent keep-alive connections, unique `update_id`s, "
        f"{result['duration_s']:g} s each after a {WARMUP_SECONDS:g} s warm-up, one Python asyncio client process "
        "(`bench/load.py`, uvloop) on the same machine. "
        f"Every server runs {result['web_workers']} processes; ours is `make web` "
        f"({result['server_settings']}, Postgres pool per worker).",
        "",
        "| server | updates/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors | RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['rate_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['max_ms']:.1f} | {r['non_2xx']} | {sum(r['errors'].values())} | {r['server_rss_mib']:.0f} |"
        )
    lines += [
        "",
        f"- Ratio to the aiogram anchor: **{result['ratio_vs_aiogram']:.2f}x** (target >= 1.0x); "
        f"to the bare ASGI ceiling: {result['ratio_vs_bare']:.2f}x.",
        f"- Answered 2xx: {ours['ok']} of {ours['sent']} sent; stored rows: {ours['stored_rows']}; "
        f"acked but not stored: {ours['acked_but_not_stored']}; stored but not acked: "
        f"{ours['stored_but_not_acked']}; every row queued once: {ours['queued_once_per_row']}; error log lines: "
        f"{ours['server_errors_logged']}.",
    ]
    return "\n".join(lines) + "\n"
