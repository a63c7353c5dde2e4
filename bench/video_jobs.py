"""Benchmark: 1,000 concurrent video jobs against a fake vendor that takes
60 s each, one worker with concurrency 2: all delivered within 90 s
(quick mode: 200 jobs of 20 s, within 50 s), and the worker's memory.

Real processes: the production Celery worker (prefork, concurrency 2; its
Kling transport points at the fake: bench/apps/vendor_worker.py), beat, the
fake Kling API over HTTP (bench/apps/fake_vendor.py; every task is ready
`latency` seconds after it was created and its result is a `video_bytes` MP4
on the vendor's CDN host), PostgreSQL and Redis. The sandbox Bot API runs in
this process. Users, wallets and each job's status message exist first; then
every job is submitted as the chat's "Create" does (`request_submit`: hold,
request, queued start task) from 8 threads, all before the worker starts, so
the 1,000 jobs wait at once. The clock starts when the worker takes the first
job (the earliest `started_at`).

A job is delivered when the video document reached the fake Bot API and the
status message says it is done. The worker does all of it: submit to the
vendor, scheduled status checks (never a sleep), progress edits of the
status message, download (size and type checks), storage, capture, upload.

Telegram's limits are off in this run (as in the overhead benchmark), so the
number is the job engine's; the sender benchmark measures the limits. With
them on, the messages alone would set the floor: see `telegram_floor_s`.

    python -m bench.video_jobs
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

from bench import harness

MODEL = "kling-std"
WORKER_CONCURRENCY = 2
TELEGRAM_RATE = 30.0
KLING_ACCESS_KEY = "ak-test"  # the fake vendor's documented-shape test keys
KLING_SECRET_KEY = "sk-test-kling-secret-key-32-bytes!"  # pragma: allowlist secret
FIRST_USER = 70_000_000


def shape() -> dict[str, Any]:
    """Jobs, vendor latency, the delivery target and the result size."""
    if harness.quick():
        return {"jobs": 200, "latency_s": 20.0, "target_s": 50.0, "video_bytes": 256 * 1024}
    return {"jobs": 1000, "latency_s": 60.0, "target_s": 90.0, "video_bytes": 1024 * 1024}


def _prepare_users(count: int, fake: Any) -> dict[int, int]:
    """Users with tokens enough, and each one's status message; returns chat -> message id."""
    from nanobanana.accounts.services import TelegramProfile, user_ensure
    from nanobanana.billing.models import EntryKind
    from nanobanana.billing.services import wallet_credit

    status_messages: dict[int, int] = {}
    for index in range(count):
        chat = FIRST_USER + index
        user, _ = user_ensure(profile=TelegramProfile(telegram_id=chat, first_name="Тест", language_code="ru"))
        wallet_credit(user=user, amount=1000, kind=EntryKind.BONUS, idempotency_key=f"bench-video-{chat}")
        fake.user(chat, first_name="Тест", language_code="ru")
        message = fake.store_message(
            chat, {"chat": fake.chat_dict(chat), "date": int(time.time()), "text": "…"}, outgoing=True
        )
        status_messages[chat] = message.message_id
    return status_messages


def _submit_all(status_messages: dict[int, int]) -> tuple[float, int]:
    """Submit every job from 8 threads; returns (seconds it took, jobs created)."""
    from django.db import connection

    from nanobanana.accounts.models import TelegramUser
    from nanobanana.generation.services import request_submit

    def submit(chat: int) -> bool:
        try:
            user = TelegramUser.objects.get(telegram_id=chat)
            _, created = request_submit(
                user=user,
                model_slug=MODEL,
                raw_params={},
                prompt=f"кит плывёт над городом {chat}",
                chat_id=chat,
                idempotency_key=f"bench-video-{chat}",
                status_message_id=status_messages[chat],
            )
            return created
        finally:
            connection.close()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        created = sum(pool.map(submit, status_messages))
    return time.monotonic() - started, created


def _worker_ready(timeout: float = 90.0) -> None:
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            return
    raise RuntimeError("the worker did not answer a ping")


def _progress(services: harness.Services, redis: Any, since: float) -> dict[str, Any]:
    """Where the jobs are, and the broker's queue lengths."""
    row = services.sql(
        "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'processing'),"
        " count(*) FILTER (WHERE status IN ('succeeded', 'failed')),"
        " count(*) FILTER (WHERE delivery_status <> 'pending') FROM generation_generationrequest"
    )[0]
    return {
        "t": round(time.time() - since, 1),
        "queued": row[0],
        "waiting": row[1],
        "finished": row[2],
        "delivered": row[3],
        "broker": {queue: redis.llen(queue) for queue in ("generation", "delivery")},
        "held": redis.hlen("unacked"),
    }


def run() -> dict[str, Any]:
    from nanobanana.sandbox import FakeTelegram, RateLimits, run_sandbox

    plan = shape()
    jobs, target = plan["jobs"], plan["target_s"]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-video-"))
    fake = FakeTelegram(token=harness.BOT_TOKEN, limits=RateLimits.off(), auto_create_chats=True)
    processes: list[harness.Process] = []
    peak = {"worker": 0.0}
    sampling = threading.Event()
    with contextlib.ExitStack() as stack:
        services = stack.enter_context(harness.services())
        api_url = stack.enter_context(run_sandbox(fake, ui=False))
        vendor_port = harness.free_port()
        env = services.env(
            TELEGRAM_API_URL=api_url,
            TELEGRAM_CHAT_INTERVAL_SECONDS="0",
            TELEGRAM_RATE_PER_SECOND="1000",
            KLING_ACCESS_KEY=KLING_ACCESS_KEY,
            KLING_SECRET_KEY=KLING_SECRET_KEY,
            BENCH_VENDOR_URL=f"http://127.0.0.1:{vendor_port}",
            BENCH_TASK_TIMES_DIR=str(log_dir),
            WORKER_CONCURRENCY=str(WORKER_CONCURRENCY),
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        # In this process's environment (Django is set up here) only while it
        # runs: `make bench` runs the test suite after it, in a child process.
        stack.enter_context(mock.patch.dict(os.environ, env))
        import django

        django.setup()
        try:
            vendor = harness.start(
                "vendor",
                [
                    harness.PYTHON,
                    "-m",
                    "bench.apps.fake_vendor",
                    "--port",
                    str(vendor_port),
                    "--latency",
                    str(plan["latency_s"]),
                    "--video-bytes",
                    str(plan["video_bytes"]),
                ],
                env=env,
                log_dir=log_dir,
            )
            processes.append(vendor)
            harness.wait_http(vendor, f"http://127.0.0.1:{vendor_port}/__stats")
            # Every job is queued before the worker runs: they wait at once.
            status_messages = _prepare_users(jobs, fake)
            submit_seconds, created = _submit_all(status_messages)
            worker = harness.start(
                "worker", [harness.PYTHON, "-m", "bench.apps.vendor_worker"], env=env, log_dir=log_dir
            )
            beat = harness.start("beat", ["make", "--no-print-directory", "beat"], env=env, log_dir=log_dir)
            processes += [worker, beat]

            def sample() -> None:
                while not sampling.wait(0.5):
                    peak["worker"] = max(peak["worker"], worker.rss_mib())

            threading.Thread(target=sample, daemon=True).start()
            _worker_ready()
            ready_rss = worker.rss_mib()
            cpu_before = worker.cpu_seconds()
            cpu_marks = [_cpu_by_process(worker, vendor, beat)]
            load = [harness.load_average()]
            ready_at = time.time()
            deadline = time.monotonic() + target + 120
            broker = services.redis()
            timeline: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                timeline.append(_progress(services, broker, ready_at))
                print(json.dumps(timeline[-1]), file=sys.stderr, flush=True)
                if timeline[-1]["delivered"] >= jobs or not worker.alive():
                    break
                time.sleep(5.0)
            broker.close()
            # The clock starts when the worker takes the first job.
            clock_start = float(
                services.sql("SELECT extract(epoch FROM min(started_at)) FROM generation_generationrequest")[0][0]
            )
            wall = time.time() - clock_start
            rows = services.sql(
                "SELECT status, delivery_status, error_code, extract(epoch FROM delivered_at),"
                " extract(epoch FROM finished_at), extract(epoch FROM started_at) FROM generation_generationrequest"
            )
            vendor_stats = httpx.get(f"http://127.0.0.1:{vendor_port}/__stats", timeout=5).json()
            end_rss = worker.rss_mib()
            end_pss = worker.pss_mib()
            worker_cpu = worker.cpu_seconds() - cpu_before
            cpu_marks.append(_cpu_by_process(worker, vendor, beat))
            load.append(harness.load_average())
            documents = Counter(int(c.params.get("chat_id", 0)) for c in fake.calls("sendDocument") if c.status == 200)
            methods = Counter(call.method for call in fake.calls())
            errors = sum(p.output().count("ERROR") for p in processes)
        finally:
            sampling.set()
            for process in processes:
                process.stop()
    result = _result(
        plan,
        rows,
        clock_start,
        submit_seconds,
        created,
        wall,
        vendor_stats,
        documents,
        methods,
        errors,
        {
            "ready": ready_rss,
            "peak": peak["worker"],
            "end": end_rss,
        },
        log_dir,
    )
    result["timeline"] = timeline
    result["tasks"] = harness.task_times(log_dir)
    result["worker_cpu_s"] = round(worker_cpu, 1)
    result["worker_cpu_ms_per_job"] = round(worker_cpu * 1000 / max(1, result["jobs"]), 1)
    result["load_average"] = {"start": load[0], "end": load[-1]}
    result["worker_pss_end_mib"] = round(end_pss, 1)
    result["cpu_by_process_s"] = {
        key: round(cpu_marks[1][key] - cpu_marks[0][key], 1) for key in cpu_marks[0] if key != "_at"
    }
    result["cpu_window_s"] = round(cpu_marks[1]["_at"] - cpu_marks[0]["_at"], 1)
    return result


def _cpu_by_process(worker: harness.Process, vendor: harness.Process, beat: harness.Process) -> dict[str, float]:
    """CPU seconds so far of each process in the run, and of the machine, to
    say what the cores were busy with between two marks (`_at`: the time)."""
    servers = harness.cpu_of_programs("postgres", "redis-server")
    return {
        "worker": worker.cpu_seconds(),
        "vendor fake": vendor.cpu_seconds(),
        "sandbox Bot API and this monitor": harness.own_cpu_seconds(),
        "beat": beat.cpu_seconds(),
        "postgres": servers["postgres"],
        "redis": servers["redis-server"],
        "whole machine": harness.machine_busy_seconds(),
        "_at": time.monotonic(),
    }


def _result(
    plan: dict[str, Any],
    rows: list[tuple[Any, ...]],
    clock_start: float,
    submit_seconds: float,
    created: int,
    wall: float,
    vendor_stats: dict[str, Any],
    documents: Counter[int],
    methods: Counter[str],
    errors: int,
    memory: dict[str, float],
    log_dir: Path,
) -> dict[str, Any]:
    jobs, target = plan["jobs"], plan["target_s"]
    delivered_after = sorted(float(row[3]) - clock_start for row in rows if row[1] == "delivered" and row[3])
    finished_after = sorted(float(row[4]) - clock_start for row in rows if row[4])
    started_after = sorted(float(row[5]) - clock_start for row in rows if row[5])
    statuses = Counter(f"{row[0]}/{row[1]}" + (f" ({row[2]})" if row[2] else "") for row in rows)
    in_time = sum(1 for value in delivered_after if value <= target)
    twice = sum(1 for count in documents.values() if count > 1)
    # With Telegram's limits on: one document and one status edit per job at 30/s.
    telegram_floor = round(2 * jobs / TELEGRAM_RATE, 1)

    def ms(values: list[float], share: float) -> float:
        return round(harness.percentile(values, share), 1)

    return {
        "name": "video_jobs",
        **plan,
        "worker_concurrency": WORKER_CONCURRENCY,
        "submitted": created,
        "submit_seconds": round(submit_seconds, 1),
        "delivered": len(delivered_after),
        "delivered_in_time": in_time,
        "documents_sent_twice": twice,
        "statuses": dict(statuses),
        "started_s": {"p50": ms(started_after, 0.5), "max": ms(started_after, 1.0)},
        "finished_s": {"p50": ms(finished_after, 0.5), "max": ms(finished_after, 1.0)},
        "delivered_s": {
            "p50": ms(delivered_after, 0.5),
            "p95": ms(delivered_after, 0.95),
            "max": ms(delivered_after, 1.0),
        },
        "wall_s": round(wall, 1),
        "vendor": vendor_stats,
        "bot_api_calls": dict(methods),
        "error_log_lines": errors,
        "worker_rss_mib": {key: round(value, 1) for key, value in memory.items()},
        "telegram_floor_s": telegram_floor,
        "targets": {
            f"all {jobs} delivered within {target:g} s": in_time == jobs,
            "no document sent twice": twice == 0,
        },
        "logs": str(log_dir),
    }


def _cpu_split(result: dict[str, Any]) -> str:
    split = result.get("cpu_by_process_s", {})
    return ", ".join(f"{name} {seconds} s" for name, seconds in split.items()) or "not measured"


def markdown(result: dict[str, Any]) -> str:
    d, vendor = result["delivered_s"], result["vendor"]
    checks = ", ".join(f"{n} checks: {tasks} jobs" for n, tasks in vendor.get("checks_per_task", {}).items())
    memory = result["worker_rss_mib"]
    lines = [
        f"{result['jobs']} video jobs (Kling through its HTTP API fake, every job ready {result['latency_s']:g} s "
        f"after the vendor got it, a {result['video_bytes'] // 1024} KiB MP4 each), one production worker "
        f"(prefork, concurrency {result['worker_concurrency']}), beat, Postgres, Redis; the sandbox Bot API "
        "with Telegram's limits off. Every job is submitted (hold placed, request stored, start task queued) "
        "before the worker runs; times count from the moment the worker takes the first job.",
        "",
        "| | value |",
        "|---|---|",
        f"| submitted before the worker started (8 threads, `request_submit`) | {result['submitted']} in "
        f"{result['submit_seconds']} s |",
        f"| sent to the vendor (p50 / last) | {result['started_s']['p50']} s / {result['started_s']['max']} s |",
        f"| result stored (p50 / last) | {result['finished_s']['p50']} s / {result['finished_s']['max']} s |",
        f"| delivered (p50 / p95 / last) | {d['p50']} s / {d['p95']} s / {d['max']} s |",
        f"| delivered within {result['target_s']:g} s | {result['delivered_in_time']} of {result['jobs']} |",
        f"| documents sent twice | {result['documents_sent_twice']} |",
        f"| vendor calls | {vendor.get('creates')} creates, {vendor.get('lists', 0)} task-list pages (the batch "
        f"poller), {vendor.get('checks')} single status checks ({checks}), {vendor.get('downloads')} downloads |",
        f"| Bot API calls | {', '.join(f'{k} {v}' for k, v in sorted(result['bot_api_calls'].items()))} |",
        f"| worker RSS (process + pool children) | working {memory['ready']} MiB, peak {memory['peak']} MiB, "
        f"end {memory['end']} MiB |",
        f"| worker PSS at the end (shared pages counted once: what the worker costs the machine) | "
        f"{result.get('worker_pss_end_mib', 'not measured')} MiB |",
        f"| outcomes | {', '.join(f'{k}: {v}' for k, v in sorted(result['statuses'].items()))} |",
        f"| worker CPU (process + pool children) | {result['worker_cpu_s']} s, "
        f"{result['worker_cpu_ms_per_job']} ms per job |",
        f"| CPU by process while the jobs ran ({result.get('cpu_window_s', '?')} s, "
        f"{os.cpu_count()} cores) | {_cpu_split(result)} |",
        f"| machine load average (1 min) at start / end | {result['load_average']['start']} / "
        f"{result['load_average']['end']} on {os.cpu_count()} cores |",
        f"| error log lines | {result['error_log_lines']} |",
        "",
        *harness.task_table(result.get("tasks", {})),
        "",
        f"With Telegram's limits on, the final document and status edit of {result['jobs']} jobs are "
        f"{2 * result['jobs']} messages: at least {result['telegram_floor_s']} s at 30/s, before any "
        "progress edit, so delivering every job within the target is a property of the job engine, "
        "measured here, and not of Telegram's throughput, measured by the sender benchmark.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, ensure_ascii=False))
