"""Faults at the front door: a killed web process, odd updates, probes."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import random
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import harness

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1200)]
EXAMPLES = int(os.environ.get("FAULTS_HYPOTHESIS_EXAMPLES", "10000"))


def text_update(update_id: int, text: str = "привет") -> dict:
    user = 700_000 + update_id % 50
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_767_000_000,
            "chat": {"id": user, "type": "private", "first_name": "Тест"},
            "from": {"id": user, "is_bot": False, "first_name": "Тест", "language_code": "ru"},
            "text": text,
        },
    }


def inbox(stack, first: int, last: int) -> dict[int, tuple[str, int]]:
    rows = stack.services.sql(
        "SELECT update_id, status, attempts FROM bot_inboxupdate WHERE update_id BETWEEN %s AND %s", first, last
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def wait_handled(stack, first: int, last: int, *, timeout: float) -> dict[int, tuple[str, int]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = inbox(stack, first, last)
        if all(status in ("done", "failed") for status, _ in rows.values()) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if '"level": "error"' in line or "Traceback" in line]


def summarize(lines: list[str]) -> collections.Counter[str]:
    """Error lines grouped by logger, message and the exception's last line."""
    kinds: collections.Counter[str] = collections.Counter()
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            kinds[line[:200]] += 1
            continue
        exception = (entry.get("exception") or "").strip().splitlines()
        kinds[f"{entry.get('logger')}: {entry.get('message')}: {exception[-1][:200] if exception else ''}"] += 1
    return kinds


def test_kill_web_mid_request_then_replay(stack, record):
    """kill -9 the web process mid-request, replay as Telegram would: each update handled once"""
    stack.worker or stack.start_worker()
    first, count = 2_000_000, 300
    updates = [text_update(first + i) for i in range(count)]
    answers: dict[int, int | str] = {}
    client = httpx.Client(timeout=5, limits=httpx.Limits(max_connections=32))
    headers = {"X-Telegram-Bot-Api-Secret-Token": harness.WEBHOOK_SECRET}

    def post(update: dict) -> None:
        try:
            answers[update["update_id"]] = client.post(stack.webhook_url, json=update, headers=headers).status_code
        except httpx.HTTPError as error:
            answers[update["update_id"]] = type(error).__name__

    kill_after = random.randint(20, count - 50)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(post, update) for update in updates]
        while len(answers) < kill_after:
            time.sleep(0.001)
        stack.web.kill()  # SIGKILL to the whole process group: make, uvicorn and its workers
        concurrent.futures.wait(futures)
    client.close()
    unanswered = [update for update in updates if answers.get(update["update_id"]) != 200]
    record(
        f"{count} updates posted by 32 connections; web killed with SIGKILL after {kill_after} answers: "
        f"{count - len(unanswered)} answered 200, {len(unanswered)} not: "
        f"{sorted({str(answer) for answer in answers.values() if answer != 200})}"
    )
    stack.start_web()
    # Telegram redelivers everything not answered 2xx; we replay every update
    # (also the answered ones): a replay must never be handled twice.
    replayed = [stack.post(update) for update in updates]
    assert set(replayed) == {200}
    rows = wait_handled(stack, first, first + count - 1, timeout=120)
    record(
        f"after restart and replay of all {count}: {len(rows)} stored, statuses "
        f"{sorted({status for status, _ in rows.values()})}, max attempts {max(a for _, a in rows.values())}"
    )
    assert len(rows) == count
    assert all(status == "done" and attempts == 1 for status, attempts in rows.values())


def _unicode_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)


def _user() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"id": st.integers(1, 2**52), "is_bot": st.booleans(), "first_name": _unicode_text(64)},
        optional={
            "last_name": _unicode_text(64),
            "username": st.from_regex(r"[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True),
            "language_code": st.sampled_from(["ru", "en", "uk", "de", "zz", ""]),
            "is_premium": st.booleans(),
        },
    )


def _chat(user_id: int | None = None) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "id": st.just(user_id) if user_id else st.integers(-(2**52), 2**52).filter(bool),
            "type": st.sampled_from(["private", "group", "supergroup", "channel"]),
        },
        optional={"title": _unicode_text(128), "first_name": _unicode_text(64)},
    )


def _file(**required: st.SearchStrategy) -> st.SearchStrategy[dict]:
    """A Telegram file object: the ids, what the type requires, an optional size."""
    return st.fixed_dictionaries(
        {
            "file_id": st.text("ABCDEFabcdef0123456789_-", min_size=5, max_size=80),
            "file_unique_id": st.text("ABCdef012", min_size=3, max_size=20),
            **required,
        },
        optional={"file_size": st.integers(0, 2**31)},
    )


_SIDE = st.integers(1, 10000)
_SECONDS = st.integers(0, 36000)
_PHOTO = _file(width=_SIDE, height=_SIDE)
_DOCUMENT = _file()
_STICKER = _file(
    type=st.sampled_from(["regular", "mask", "custom_emoji"]),
    width=_SIDE,
    height=_SIDE,
    is_animated=st.booleans(),
    is_video=st.booleans(),
)
_VOICE = _file(duration=_SECONDS)
_VIDEO = _file(width=_SIDE, height=_SIDE, duration=_SECONDS)
_CONTENT = st.one_of(
    st.fixed_dictionaries(
        {
            "text": st.one_of(
                _unicode_text(4096),
                st.just("/start"),
                st.just("/help"),
                st.builds(lambda n: "🍌" * n, st.integers(1, 50_000)),
            )
        }
    ),
    st.fixed_dictionaries(
        {"photo": st.lists(_PHOTO, min_size=1, max_size=4)}, optional={"caption": _unicode_text(1024)}
    ),
    st.fixed_dictionaries({"document": _DOCUMENT}, optional={"caption": _unicode_text(1024)}),
    st.fixed_dictionaries({"sticker": _STICKER}),
    st.fixed_dictionaries({"voice": _VOICE}),
    st.fixed_dictionaries({"video": _VIDEO}),
    st.fixed_dictionaries(
        {"location": st.fixed_dictionaries({"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)})}
    ),
    st.fixed_dictionaries(
        {
            "contact": st.fixed_dictionaries(
                {"phone_number": st.text("+0123456789", min_size=1, max_size=16), "first_name": _unicode_text(64)}
            )
        }
    ),
    st.fixed_dictionaries({"new_chat_members": st.lists(_user(), max_size=3)}),
    st.just({}),
)


@st.composite
def _message(draw) -> dict:
    sender = draw(_user())
    message = {
        "message_id": draw(st.integers(1, 2**31)),
        "date": draw(st.integers(0, 2**32)),
        "chat": draw(_chat(sender["id"])),
    }
    if draw(st.booleans()):
        message["from"] = sender
    message.update(draw(_CONTENT))
    return message


@st.composite
def updates(draw) -> dict:
    kind = draw(
        st.sampled_from(
            [
                "message",
                "edited_message",
                "channel_post",
                "callback_query",
                "my_chat_member",
                "inline_query",
                "pre_checkout_query",
                "unknown_future_type",
            ]
        )
    )
    if kind in ("message", "edited_message", "channel_post"):
        body = draw(_message())
    elif kind == "callback_query":
        body = {
            "id": draw(st.text("0123456789", min_size=1, max_size=20)),
            "from": draw(_user()),
            "chat_instance": "1",
            "data": draw(_unicode_text(64)),
        }
        if draw(st.booleans()):
            body["message"] = draw(_message())
    elif kind == "my_chat_member":
        body = {
            "chat": draw(_chat()),
            "from": draw(_user()),
            "date": 1,
            "old_chat_member": {"status": "member", "user": draw(_user())},
            "new_chat_member": {"status": draw(st.sampled_from(["kicked", "member", "left"])), "user": draw(_user())},
        }
        if body["new_chat_member"]["status"] == "kicked":
            body["new_chat_member"]["until_date"] = 0  # required for "kicked"; 0 means forever
    elif kind == "inline_query":
        body = {"id": "1", "from": draw(_user()), "query": draw(_unicode_text(256)), "offset": ""}
    elif kind == "pre_checkout_query":
        body = {
            "id": draw(st.text("0123456789", min_size=1, max_size=20)),
            "from": draw(_user()),
            "currency": "XTR",
            "total_amount": draw(st.integers(1, 100000)),
            "invoice_payload": draw(_unicode_text(128)),
        }
    else:
        body = {"anything": draw(_unicode_text(32))}
    return {kind: body}


def test_hypothesis_updates_never_5xx_and_log_no_unhandled_error(stack, record):
    """10,000 odd but well-formed updates (hypothesis) through the webhook: no 5xx, no unhandled error"""
    stack.worker or stack.start_worker()
    first = 3_000_000
    counter = iter(range(first, first + 10 * EXAMPLES))
    statuses: collections.Counter[int] = collections.Counter()
    refused: list[str] = []
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=8))
    headers = {"X-Telegram-Bot-Api-Secret-Token": harness.WEBHOOK_SECRET}
    logs_before = len(stack.logs())

    def send(body: bytes) -> None:
        status = client.post(stack.webhook_url, content=body, headers=headers).status_code
        statuses[status] += 1
        if status >= 500 and len(refused) < 5:
            refused.append(f"{status} for {body[:300]!r}")

    # Hypothesis generates; eight connections post (generating is the slow part).
    pool = concurrent.futures.ThreadPoolExecutor(8)
    futures: list[concurrent.futures.Future[None]] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(update=updates())
    def post(update: dict) -> None:
        update = {"update_id": next(counter), **update}
        futures.append(pool.submit(send, json.dumps(update, ensure_ascii=False).encode()))

    started = time.monotonic()
    try:
        post()
        for future in futures:
            future.result()
    finally:
        pool.shutdown(wait=True)
        client.close()
        record(
            f"{sum(statuses.values())} updates posted in {time.monotonic() - started:.0f} s; answers {dict(statuses)}"
        )
        for line in refused:
            record(f"5xx: `{line}`")
    assert not refused
    last = next(counter) - 1
    rows = wait_handled(stack, first, last, timeout=float(os.environ.get("FAULTS_HANDLE_TIMEOUT", "600")))
    by_status: dict[str, int] = {}
    for status, _ in rows.values():
        by_status[status] = by_status.get(status, 0) + 1
    errors = error_lines(stack.logs()[logs_before:])
    record(f"worker handled them: inbox statuses {by_status}; error lines in web and worker logs: {len(errors)}")
    for kind, seen in summarize(errors).most_common(10):
        record(f"{seen} x `{kind}`")
    assert by_status.get("pending", 0) == by_status.get("processing", 0) == 0
    assert errors == []


def test_security_probes(stack, record):
    """Security probes: missing or wrong secret, oversized body, GET, media paths with `..`"""
    base = f"http://127.0.0.1:{stack.port}"
    update = text_update(4_000_000)
    checks = {
        "no secret": httpx.post(stack.webhook_url, json=update, timeout=10).status_code,
        "wrong secret": stack.post(update, secret="wrong"),
        "secret with a suffix": stack.post(update, secret=harness.WEBHOOK_SECRET + "x"),
        "oversized body (2 MB)": stack.post(text_update(4_000_001, "x" * 2_000_000)),
        "GET on the webhook": httpx.get(stack.webhook_url, timeout=10).status_code,
    }
    for path in (
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/../../etc/passwd",
        "/media/%2e%2e%2fconfig%2fsettings.py",
        "/media/..",
        "/media/....//....//etc/passwd",
    ):
        response = httpx.get(base + path, timeout=10)
        checks[f"GET {path}"] = response.status_code
        assert b"root:" not in response.content
        assert b"SECRET_KEY" not in response.content
    for name, status in checks.items():
        record(f"{name}: {status}")
    assert checks["no secret"] == checks["wrong secret"] == checks["secret with a suffix"] == 403
    assert checks["oversized body (2 MB)"] == 413
    assert checks["GET on the webhook"] == 405
    assert all(400 <= status < 500 for name, status in checks.items() if name.startswith("GET /media"))
    assert not inbox(stack, 4_000_000, 4_000_001)
