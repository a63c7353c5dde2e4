"""PostgreSQL and Redis stopped for 10 s under traffic (opt-in).

Other work on this machine uses the same servers, so these tests run only
with FAULTS_DISRUPT_SERVICES=1 (CI's `make faults` sets it), keep each stop
at 10 s, and restart the server in a `finally`, whatever happened."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import harness
from tests.faults.conftest import DISRUPT

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not DISRUPT, reason="stops shared services: set FAULTS_DISRUPT_SERVICES=1"),
]
OUTAGE_SECONDS = 10.0


def _cluster() -> str:
    return sorted(path.name for path in Path("/etc/postgresql").iterdir())[0]


def _run(*command: str) -> None:
    subprocess.run(command, check=False, capture_output=True, timeout=60)


def _ready(command: list[str]) -> bool:
    return subprocess.run(command, check=False, capture_output=True, timeout=10).returncode == 0


def _wait(command: list[str], *, up: bool, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _ready(command) != up and time.monotonic() < deadline:
        time.sleep(0.2)


PG_READY = ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]
REDIS_READY = ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"]


@contextlib.contextmanager
def postgres_stopped() -> Iterator[None]:
    _run("pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "stop", "-m", "fast")
    try:
        _wait(PG_READY, up=False, timeout=20)
        yield
    finally:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "start")
        _wait(PG_READY, up=True)


@contextlib.contextmanager
def redis_stopped() -> Iterator[None]:
    _run("redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave")
    try:
        _wait(REDIS_READY, up=False, timeout=20)
        yield
    finally:
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
        _run(
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        )
        _wait(REDIS_READY, up=True)


def text_update(update_id: int) -> dict:
    user = 800_000 + update_id % 40
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_767_000_000,
            "chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "Тест", "language_code": "ru"},
            "text": "привет",
        },
    }


def traffic_through(stack, outage, *, first: int, record) -> None:
    """Telegram-like traffic (20 updates/s, each redelivered until 2xx) across an outage."""
    answers: Counter[str] = Counter()
    during: Counter[str] = Counter()
    window = {"on": False}
    client = httpx.Client(timeout=15)
    headers = {"X-Telegram-Bot-Api-Secret-Token": harness.WEBHOOK_SECRET}
    ids = list(range(first, first + 500))
    stop = threading.Event()

    def deliver(update_id: int) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                status = str(client.post(stack.webhook_url, json=text_update(update_id), headers=headers).status_code)
            except httpx.HTTPError as error:
                status = type(error).__name__
            answers[status] += 1
            if window["on"]:
                during[status] += 1
            if status.startswith("2"):
                return
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    threads: list[threading.Thread] = []

    def produce() -> None:
        for update_id in ids:
            thread = threading.Thread(target=deliver, args=(update_id,), daemon=True)
            thread.start()
            threads.append(thread)
            time.sleep(0.05)

    started = time.monotonic()
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        time.sleep(5.0)
        with outage():
            window["on"] = True
            time.sleep(OUTAGE_SECONDS)
            window["on"] = False
        producer.join(timeout=120)
        for thread in list(threads):
            thread.join(timeout=120)
    finally:
        stop.set()
        client.close()
    record(
        f"{len(ids)} updates at 20/s for {time.monotonic() - started:.0f} s, each redelivered until 2xx; "
        f"answers during the {OUTAGE_SECONDS:g} s outage: {dict(during)}; all answers: {dict(answers)}"
    )
    assert not any(status.startswith("5") and status != "503" for status in answers), answers


def check_handled_once(stack, *, first: int, count: int, record) -> None:
    deadline = time.monotonic() + 180
    while True:
        for line in stack.revive():
            record(line)
        rows = stack.services.sql(
            "SELECT status, attempts FROM bot_inboxupdate WHERE update_id BETWEEN %s AND %s", first, first + count - 1
        )
        if (len(rows) == count and all(status == "done" for status, _ in rows)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    statuses = Counter(status for status, _ in rows)
    record(
        f"afterwards: {len(rows)} of {count} stored once; inbox statuses {dict(statuses)}; "
        f"max handling attempts {max((a for _, a in rows), default=0)}"
    )
    assert len(rows) == count
    assert statuses == {"done": count}


def test_postgres_stopped_for_10_seconds(stack, record):
    """PostgreSQL stopped for 10 s under traffic: 503 while it cannot store, nothing lost or doubled after"""
    first = 5_000_000
    traffic_through(stack, postgres_stopped, first=first, record=record)
    check_handled_once(stack, first=first, count=500, record=record)


def test_redis_stopped_for_10_seconds(stack, record):
    """Redis stopped for 10 s under traffic: updates still stored (200), queued after, nothing lost or doubled"""
    first = 6_000_000
    traffic_through(stack, redis_stopped, first=first, record=record)
    check_handled_once(stack, first=first, count=500, record=record)
