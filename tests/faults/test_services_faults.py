"""PostgreSQL and Redis stopped for 10 s under traffic.

The suite's own servers (`servers.py`) are stopped and started, never the
machine's: the session's web, worker and beat talk only to those.
Each server is started again in a `finally`, whatever happened. The
processes must ride the outage out: the same web, worker and beat are alive
afterwards and catch up without a restart."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import httpx
import pytest

from bench import harness
from tests.faults.conftest import requests_of, wait_settled

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]
OUTAGE_SECONDS = 10.0


def _wait(check: Callable[[], bool], *, up: bool, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while check() != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"server still {'down' if up else 'up'} after {timeout:g} s")
        time.sleep(0.2)


@contextlib.contextmanager
def postgres_stopped(stack) -> Iterator[None]:
    """`pg_ctl stop -m fast`: every connection is cut, new ones are refused."""
    postgres = stack.servers.postgres
    postgres.stop("fast")
    try:
        _wait(postgres.ready, up=False, timeout=20)
        yield
    finally:
        postgres.start()
        _wait(postgres.ready, up=True)


@contextlib.contextmanager
def redis_stopped(stack) -> Iterator[None]:
    """redis-server gets SIGTERM and exits (nothing saved: queued messages are
    lost with it, which the inbox's redrive sweep must make up for)."""
    server = stack.servers.redis
    server.stop()
    try:
        _wait(server.ready, up=False, timeout=20)
        yield
    finally:
        server.start()
        _wait(server.ready, up=True)


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


def traffic_through(stack, outage: Callable[..., AbstractContextManager[None]], *, first: int, record) -> None:
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
        with outage(stack):
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


def processes(stack) -> dict[str, harness.Process]:
    return {"web": stack.web, "worker": stack.worker, "beat": stack.beat}


def process_ids(stack) -> dict[str, int]:
    return {name: process.pid for name, process in processes(stack).items()}


@contextlib.contextmanager
def redis_stopped_mid_generation(stack, *, crowd, record) -> Iterator[None]:
    """People confirm images; Redis stops once every request exists (their
    drafts live in Redis, which keeps nothing over a restart) and one of them
    is being generated (the local provider takes 2 s): the worker holds a
    delivered, unacknowledged message (late acknowledgement) when Redis goes,
    as in the run where losing Redis stopped it (decision 006)."""
    for person in crowd:
        person.tap("Создать за")
    user_ids = [person.user_id for person in crowd]
    deadline = time.monotonic() + 120
    while True:
        statuses = Counter(row["status"] for row in requests_of(stack, user_ids))
        if sum(statuses.values()) == len(crowd) and statuses["processing"]:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no generation running with every request made within 120 s: {dict(statuses)}")
        time.sleep(0.05)
    record(f"{len(crowd)} people confirmed an image; Redis stopped with their requests {dict(statuses)}")
    with redis_stopped(stack):
        yield


def check_generations_settled(stack, crowd, *, record) -> None:
    """Each generation cut by the outage ends delivered once, or failed with
    its hold released, never generated twice. Work the outage lost comes back
    through the generation sweep (beat, every 30 s), which re-drives requests
    whose step is overdue by REDRIVE_AFTER (120 s): the wait covers both."""
    user_ids = [person.user_id for person in crowd]
    rows = wait_settled(stack, user_ids, expected=len(crowd), timeout=400)
    outcomes = Counter(f"{row['status']}/{row['delivery_status']}/hold {row['hold']}" for row in rows)
    generated = dict(
        stack.services.sql(
            "SELECT request_id, count(*) FROM generation_generationresult WHERE request_id = ANY(%s) "
            "GROUP BY request_id",
            [row["id"] for row in rows],
        )
    )
    documents = {person.user_id: len(person.documents()) for person in crowd}
    ledger = stack.manage("billing_reconcile").strip()
    record(
        f"generations afterwards: {dict(outcomes)}; documents per person {sorted(documents.values())}; "
        f"results generated per request {sorted(generated.values())}; billing_reconcile: {ledger}"
    )
    assert len(rows) == len(crowd)
    for row in rows:
        assert generated.get(row["id"], 0) <= 1
        if row["status"] == "succeeded":
            assert row["delivery_status"] in ("delivered", "linked")
            assert row["hold"] == "captured"
            assert documents[row["chat_id"]] <= 1
        else:
            assert row["status"] == "failed"
            assert row["hold"] == "released"
    assert ledger.startswith("ledger OK")


def check_handled_once(stack, *, first: int, count: int, before: dict[str, int], logs_from: int, record) -> None:
    """Every update stored once and handled once, by the processes that were
    running before the outage (none restarted, none dead)."""
    # The inbox redrive sweep (beat, every 30 s, for rows older than
    # INBOX_REDRIVE_AFTER_SECONDS=5) re-queues what the outage lost: a few
    # sweeps fit in the wait.
    deadline = time.monotonic() + 180
    started = time.monotonic()
    while True:
        rows = stack.services.sql(
            "SELECT status, attempts FROM bot_inboxupdate WHERE update_id BETWEEN %s AND %s", first, first + count - 1
        )
        done = len(rows) == count and all(status == "done" for status, _ in rows)
        dead = [name for name, process in processes(stack).items() if not process.alive()]
        if done or dead or time.monotonic() > deadline:
            break
        time.sleep(1)
    statuses = Counter(status for status, _ in rows)
    record(
        f"afterwards: {len(rows)} of {count} stored once; inbox statuses {dict(statuses)} "
        f"{time.monotonic() - started:.0f} s after the traffic ended; "
        f"max handling attempts {max((a for _, a in rows), default=0)}"
    )
    alive = {name: process.alive() for name, process in processes(stack).items()}
    record(f"processes alive and not restarted: {alive} (pids unchanged: {process_ids(stack) == before})")
    for name, process in processes(stack).items():
        if not process.alive():
            last = [line for line in process.output().splitlines() if '"level": "critical"' in line or "Error" in line]
            record(f"{name} exited with {process.popen.returncode}: `{last[-1][:300] if last else 'no error line'}`")
    # A handler that failed on the outage and was given up: its user got no
    # answer although the update counts as done.
    dropped = [line for line in stack.logs()[logs_from:].splitlines() if '"message": "handler failed"' in line]
    record(f"updates whose handler failed and was not retried: {len(dropped)}")
    for line in dropped[:3]:
        record(f"`{line[:300]}`")
    assert alive == {"web": True, "worker": True, "beat": True}
    assert process_ids(stack) == before
    assert len(rows) == count
    assert statuses == {"done": count}
    assert dropped == []


def test_postgres_stopped_for_10_seconds(stack, record):
    """PostgreSQL stopped for 10 s under traffic: 503 while it cannot store, nothing lost or doubled after"""
    first = 5_000_000
    before, logs_from = process_ids(stack), len(stack.logs())
    traffic_through(stack, postgres_stopped, first=first, record=record)
    check_handled_once(stack, first=first, count=500, before=before, logs_from=logs_from, record=record)


def test_redis_stopped_for_10_seconds(stack, people, record):
    """Redis stopped for 10 s under traffic and mid-generation: the worker rides it out, nothing lost or doubled"""
    first = 6_000_000
    crowd = people(2)
    for person in crowd:
        person.prepare_image(f"маяк номер {person.user_id}")
    before, logs_from = process_ids(stack), len(stack.logs())
    outage = functools.partial(redis_stopped_mid_generation, crowd=crowd, record=record)
    traffic_through(stack, outage, first=first, record=record)
    check_handled_once(stack, first=first, count=500, before=before, logs_from=logs_from, record=record)
    check_generations_settled(stack, crowd, record=record)
