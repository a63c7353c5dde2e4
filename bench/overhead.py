"""Benchmark: our overhead around a generation. The local provider with no
latency; people press "Create" at 20 per second for 60 s (5 s quick); time
from the update leaving the sandbox Bot API to the finished document
arriving back at it, p50 and p95 (targets 100 ms and 250 ms), with the
memory of the web and worker processes.

Real processes: the web process (`make web`), the production Celery worker
(concurrency 3 as in production, timed per task: bench/apps/vendor_worker.py,
which logs at WARNING instead of INFO) and beat, on a fresh database; the sandbox Bot API
runs in this process and delivers updates to the webhook as Telegram does.
Each person is first walked to the price confirmation (not measured).

Anchor, in the same run: `/help` at the same rate, the round trip of an
update that needs one reply and no generation (the pipeline's floor:
webhook, inbox, queue, worker, one send).

    python -m bench.overhead
    BENCH_OVERHEAD_RATE=15 python -m bench.overhead   # another rate (the report names it)
    BENCH_OVERHEAD_SECONDS=20 python -m bench.overhead  # a shorter run (the report names it)
    BENCH_PROFILE_DIR=/tmp/prof python -m bench.overhead  # py-spy over the worker while measured
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import harness

# The rate; BENCH_OVERHEAD_RATE measures another one, to find where
# the targets stop being met (every report names its rate).
RATE_PER_SECOND = float(os.environ.get("BENCH_OVERHEAD_RATE", "20"))
TARGET_P50_MS = 100.0
TARGET_P95_MS = 250.0
FIRST_USER = 50_000_000


def seconds() -> float:
    """The issue's 60 s (5 s quick); BENCH_OVERHEAD_SECONDS for shorter profiling runs."""
    override = os.environ.get("BENCH_OVERHEAD_SECONDS", "")
    if override:
        return float(override)
    return 5.0 if harness.quick() else 60.0


class Flow:
    """People talking to the bot through the sandbox (`fake.sync`)."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def bot_messages(self, user: int) -> list[Any]:
        return [m for m in self.fake.history(user) if m.outgoing and not m.deleted]

    def button(self, user: int, label: str, *, timeout: float = 120.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.bot_messages(user)):
                for button in message.buttons:
                    if label in button.get("text", "") and "callback_data" in button:
                        return message.message_id, button["callback_data"]
            time.sleep(0.05)
        raise TimeoutError(f"user {user}: no button {label!r}")

    def tap(self, user: int, label: str) -> None:
        message_id, data = self.button(user, label)
        self.fake.sync.press_button(user, message_id, data)

    def wait_text(self, user: int, needle: str, *, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in (m.text or m.caption or "") for m in self.bot_messages(user)):
                return
            time.sleep(0.05)
        raise TimeoutError(f"user {user}: no message with {needle!r}")

    def prepare(self, user: int) -> tuple[int, str]:
        """Walk to the price confirmation; returns the confirm button."""
        self.fake.user(user, first_name="Тест", language_code="ru")
        self.fake.sync.send_text(user, "/start")
        self.tap(user, "Создать изображение")
        self.tap(user, "Local · Fast")
        self.tap(user, "Далее")
        self.wait_text(user, "Опишите, что нарисовать")
        self.fake.sync.send_text(user, f"кот {user}")
        return self.button(user, "Создать за")


def _arrivals(fake: Any, method: str) -> dict[int, float]:
    """First successful `method` call per chat: its time at the fake."""
    found: dict[int, float] = {}
    for call in fake.calls(method):
        chat = int(call.params.get("chat_id", 0) or 0)
        if call.status == 200 and chat not in found:
            found[chat] = call.time
    return found


def _paced(users: list[int], action: Any) -> dict[int, float]:
    """Run `action(user)` at RATE_PER_SECOND; returns when each started (wall clock)."""
    started: dict[int, float] = {}
    interval = 1.0 / RATE_PER_SECOND
    begin = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = []
        for index, user in enumerate(users):
            time.sleep(max(0.0, begin + index * interval - time.monotonic()))
            started[user] = time.time()
            futures.append(pool.submit(action, user))
        for future in futures:
            future.result()
    return started


def _latencies(started: dict[int, float], arrived: dict[int, float]) -> dict[str, Any]:
    values = [arrived[user] - at for user, at in started.items() if user in arrived]
    return {
        "sent": len(started),
        "completed": len(values),
        "p50_ms": round(harness.percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(harness.percentile(values, 0.95) * 1000, 1),
        "p99_ms": round(harness.percentile(values, 0.99) * 1000, 1),
        "max_ms": round(max(values, default=0.0) * 1000, 1),
    }


def _wait_for(arrivals: Any, users: list[int], timeout: float) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = arrivals()
        if all(user in found for user in users) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def run() -> dict[str, Any]:
    from nanobanana.sandbox import FakeTelegram, RateLimits, run_sandbox

    count = int(seconds() * RATE_PER_SECOND)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    fake = FakeTelegram(
        token=harness.BOT_TOKEN, limits=RateLimits.off(), auto_create_chats=True, webhook_secret=harness.WEBHOOK_SECRET
    )
    processes: list[harness.Process] = []
    peaks = {"web": 0.0, "worker": 0.0}
    sampling = threading.Event()
    with harness.services() as services, run_sandbox(fake, ui=False) as api_url:
        env = services.env(
            TELEGRAM_API_URL=api_url,
            # Production hides the local models unless they are enabled.
            LOCAL_PROVIDER_ENABLED="1",
            LOCAL_PROVIDER_LATENCY_SECONDS="0",
            # Limits are the sender benchmark's subject; here they would only add spacing.
            TELEGRAM_CHAT_INTERVAL_SECONDS="0",
            TELEGRAM_RATE_PER_SECOND="1000",
        )
        port = harness.free_port()
        try:
            web = harness.start(
                "web", ["make", "--no-print-directory", "web", f"PORT={port}"], env=env, log_dir=log_dir
            )
            # The production worker, timed per task (bench/apps/vendor_worker.py without a vendor).
            worker = harness.start(
                "worker",
                [harness.PYTHON, "-m", "bench.apps.vendor_worker"],
                env={**env, "BENCH_TASK_TIMES_DIR": str(log_dir)},
                log_dir=log_dir,
            )
            beat = harness.start("beat", ["make", "--no-print-directory", "beat"], env=env, log_dir=log_dir)
            processes += [web, worker, beat]
            harness.wait_http(web, f"http://127.0.0.1:{port}/api/health")
            fake.webhook.url = f"http://127.0.0.1:{port}{harness.WEBHOOK_PATH}"

            def sample() -> None:
                while not sampling.wait(0.5):
                    peaks["web"] = max(peaks["web"], web.rss_mib())
                    peaks["worker"] = max(peaks["worker"], worker.rss_mib())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            flow = Flow(fake)
            # Anchor: /help at the same rate (people who exist already: their /start is done).
            helpers = [FIRST_USER + i for i in range(count)]
            prepare_started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                confirms = dict(zip(helpers, pool.map(flow.prepare, helpers), strict=True))
            prepare_seconds = time.monotonic() - prepare_started

            def help_arrivals() -> dict[int, float]:
                found: dict[int, float] = {}
                for call in fake.calls("sendMessage"):
                    chat = int(call.params.get("chat_id", 0) or 0)
                    answered = call.status == 200 and chat in help_started and chat not in found
                    if answered and call.time >= help_started[chat]:
                        found[chat] = call.time
                return found

            help_started: dict[int, float] = {}
            anchor_users = helpers[: max(1, count // 2)]
            help_started.update(_paced(anchor_users, lambda user: fake.sync.send_text(user, "/help")))
            anchor = _latencies(help_started, _wait_for(help_arrivals, anchor_users, 60))

            tasks_before = harness.task_totals(log_dir)
            with harness.profiled(worker, "overhead-worker"):
                started = _paced(helpers, lambda user: fake.sync.press_button(user, *confirms[user]))
                arrived = _wait_for(lambda: _arrivals(fake, "sendDocument"), helpers, 180)
            ours = _latencies(started, arrived)
            tasks = harness.task_times(log_dir, since=tasks_before)
            delivered = services.sql(
                "SELECT count(*) FROM generation_generationrequest WHERE delivery_status = 'delivered'"
            )[0][0]
            errors = sum(p.output().count('"level": "error"') for p in processes)
            memory = {"web_rss_mib": round(web.rss_mib(), 1), "worker_rss_mib": round(worker.rss_mib(), 1)}
        finally:
            sampling.set()
            for process in processes:
                process.stop()
    return {
        "name": "overhead",
        "rate_per_s": RATE_PER_SECOND,
        "duration_s": seconds(),
        "generations": count,
        "prepare_seconds": round(prepare_seconds, 1),
        "help_anchor": anchor,
        "nanobanana": ours,
        "delivered_in_db": delivered,
        "error_log_lines": errors,
        "memory_end": memory,
        "memory_peak": {"web_rss_mib": round(peaks["web"], 1), "worker_rss_mib": round(peaks["worker"], 1)},
        "ratio_p50_vs_help": round(ours["p50_ms"] / anchor["p50_ms"], 2) if anchor["p50_ms"] else 0.0,
        "targets": {
            f"p50 <= {TARGET_P50_MS:g} ms": ours["p50_ms"] <= TARGET_P50_MS,
            f"p95 <= {TARGET_P95_MS:g} ms": ours["p95_ms"] <= TARGET_P95_MS,
            "every generation delivered": ours["completed"] == count,
        },
        "tasks": tasks,
        "logs": str(log_dir),
    }


def markdown(result: dict[str, Any]) -> str:
    ours, anchor = result["nanobanana"], result["help_anchor"]
    lines = [
        f'The local provider with no latency; {result["generations"]} people press "Create" at '
        f"{result['rate_per_s']:g}/s for {result['duration_s']:g} s. Time from the callback update leaving the "
        "sandbox Bot API to the document arriving at it. Real processes: `make web`, the production worker "
        "(concurrency 3 as in production, timed per task), `make beat`; the sandbox in the benchmark process. "
        f"Walking each person to the confirmation took {result['prepare_seconds']} s (not measured).",
        "",
        "| path | sent | completed | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in (("`/help` reply (anchor: the pipeline's floor)", anchor), ("generation to document", ours)):
        lines.append(
            f"| {label} | {r['sent']} | {r['completed']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} "
            f"| {r['max_ms']} |"
        )
    lines += [
        "",
        f"- p50 is {result['ratio_p50_vs_help']}x the `/help` round trip; targets p50 <= {TARGET_P50_MS:g} ms, "
        f"p95 <= {TARGET_P95_MS:g} ms.",
        f"- Memory (RSS, process and children) at the end: web {result['memory_end']['web_rss_mib']} MiB, "
        f"worker {result['memory_end']['worker_rss_mib']} MiB; peak: web {result['memory_peak']['web_rss_mib']} MiB, "
        f"worker {result['memory_peak']['worker_rss_mib']} MiB.",
        f"- Delivered in the database: {result['delivered_in_db']}; error log lines: {result['error_log_lines']}.",
        "",
        "Worker time per task while the generations ran (the `/help` anchor and the walk excluded):",
        "",
        *harness.task_table(result.get("tasks", {})),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
