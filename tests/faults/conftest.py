"""The fault suite: real processes (web, Celery worker, beat) on a PostgreSQL
cluster and a Redis server of the suite's own (`servers.py`), the sandbox Bot
API in this process, and faults made on purpose: kill -9, the database and
the broker stopped, Telegram misbehaving, odd input, hostile vendor answers.

Run with `make faults` (excluded from `make test`; CI runs both). Each test
records what it did and saw with the `record` fixture; the session writes
docs/reliability.md. The machine's own PostgreSQL and Redis are never
stopped: the outage tests stop and start the suite's servers.

One stack (web, worker, beat, the sandbox) serves every module of a session.
When it stops, every captured log line (web, worker, beat, management
commands, the servers) and every Bot API call (its parameters and uploaded
files) is scanned for the bot token and the configured secrets; a leak fails
the run (`secret_scan`). The in-process probes scan their own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import signal
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import harness
from nanobanana.sandbox import FakeTelegram, RateLimits, run_sandbox
from tests.faults import servers as own_servers

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "reliability.md"
RAW = ROOT / "docs" / "reliability.json"
# How long web, worker or beat may take to be ready after a start. A
# readiness wait, not a property under test: on this shared 2-core machine,
# with other benchmarks running, two uvicorn workers importing Django took
# over 30 s. A process that never comes up still fails, only later.
START_SECONDS = 180.0
_records: list[dict[str, Any]] = []
_started = time.monotonic()
# The versions of the servers the tests ran on, read while they run.
_machine: dict[str, Any] = {}
# Every test id collected in this session (before -k/-m deselection), per file.
_collected: dict[str, set[str]] = {}
# Files named with a test (`file.py::test`): pytest collects only that test
# of them, so the others' absence says nothing about whether they exist.
_narrowed: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    # CI stops a job that runs over its time with SIGTERM. Python's default
    # for it is to die on the spot, leaving web, worker, beat and the servers
    # running; as KeyboardInterrupt, pytest tears the fixtures down first.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    for argument in config.args:
        path, separator, _ = argument.partition("::")
        if separator:
            with contextlib.suppress(ValueError):
                _narrowed.add(str((config.invocation_params.dir / path).resolve().relative_to(ROOT)))


@dataclass
class Record:
    title: str
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Iterator[Record]:
    """What a test did and saw, for docs/reliability.md."""
    doc = (request.function.__doc__ or request.node.name).strip().splitlines()[0]
    entry = Record(title=doc)
    started = time.monotonic()
    yield entry
    _records.append(
        {
            "test": request.node.nodeid,
            "title": entry.title,
            "lines": entry.lines,
            "seconds": round(time.monotonic() - started, 1),
            "outcome": getattr(request.node, "fault_outcome", "unknown"),
        }
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.fault_outcome = report.outcome  # type: ignore[attr-defined]
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
            item.fault_outcome = "**failed**: " + " ".join(message.split())[:300]  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Runs before the main plugin's -k/-m deselection (conftest hooks run
    # first): every test that exists in the files this session collected.
    for item in items:
        _collected.setdefault(item.nodeid.split("::", 1)[0], set()).add(item.nodeid)


def _still_exists(test: str) -> bool:
    """Keep a stored row unless its test is gone: its file was collected
    whole in this session without it, or the file itself is gone."""
    path, _, name = test.partition("::")
    if not (ROOT / path).exists():
        return False
    if name.startswith(SCAN_PREFIX):
        return test == SCAN_ID  # one scan for the session; older ones were per module
    if path not in _collected or path in _narrowed:
        return True
    return test in _collected[path]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _records:
        return
    machine = _machine or harness.machine()
    wall = time.monotonic() - _started
    # A session that ran only some tests updates their rows and keeps the rest.
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}"
    try:
        kept = [r for r in json.loads(RAW.read_text())["records"] if _still_exists(r["test"])]
    except (OSError, ValueError, KeyError):
        kept = []
    ran = {record["test"] for record in _records}
    records = [r for r in kept if r["test"] not in ran] + [{**r, "at": stamp} for r in _records]
    order = {r["test"]: index for index, r in enumerate(kept)}
    records.sort(key=lambda r: order.get(r["test"], len(order)))
    RAW.write_text(json.dumps({"records": records}, indent=2, ensure_ascii=False) + "\n")
    total = sum(r["seconds"] for r in records)
    lines = [
        "# Reliability",
        "",
        "Written by `make faults` (`tests/faults/`); do not edit by hand. Real processes",
        "(web as `make web`, a Celery worker as `make worker`, beat) on a PostgreSQL",
        "cluster and a Redis server the suite starts for itself on free ports (the",
        "machine's own servers are never stopped), the sandbox Bot API, and faults made",
        "on purpose. CI runs it (`.ci/run`, after `make test`). Rows are kept per test:",
        "a session that runs some tests again replaces their rows (the `run at` column).",
        "FAULTS_HYPOTHESIS_EXAMPLES=N generates fewer updates for a quicker local run.",
        "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; git {machine['git_sha']}; "
        f"{machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"PostgreSQL {machine['postgres']}, Redis {machine['redis']}.",
        f"- Time: the tests below took **{total:.0f} s** together (plus start-up of the servers and "
        f"processes); the last session ({len(_records)} rows) ran {wall:.0f} s.",
        "",
        "| fault | result | seconds | run at |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['title']} | {r['outcome']} | {r['seconds']} | {r.get('at', '')} |" for r in records]
    for r in records:
        lines += ["", f"## {r['title']}", "", f"`{r['test']}`: {r['outcome']}", ""]
        lines += [f"- {line}" for line in r["lines"]] or ["- (no details recorded)"]
    REPORT.write_text("\n".join(lines) + "\n")


# --- Real processes ------------------------------------------------------------


WORKER_READY = re.compile(r"celery@\S+ ready\.")
BEAT_READY = re.compile(r"beat: Starting\.\.\.")


def wait_for_line(process: harness.Process, pattern: re.Pattern[str], *, timeout: float = START_SECONDS) -> None:
    """Wait until the process logs a line matching `pattern` (it is ready)."""
    deadline = time.monotonic() + timeout
    while not pattern.search(process.output()):
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.output()[-4000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{process.name} not ready within {timeout:g} s:\n{process.output()[-4000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def servers() -> Iterator[own_servers.Servers]:
    """The suite's own PostgreSQL and Redis, for every module's stack."""
    with own_servers.servers() as found:
        _machine.update(harness.machine(pg_admin_url=found.postgres.admin_url, redis_base_url=found.redis.url))
        yield found


@dataclass
class Stack:
    """The web process, a worker and beat on one throw-away database of the
    suite's own servers, talking to the sandbox Bot API served from this test
    process."""

    services: harness.Services
    servers: own_servers.Servers
    fake: FakeTelegram
    api_url: str
    log_dir: Path
    port: int = 0
    web: harness.Process | None = None
    worker: harness.Process | None = None
    beat: harness.Process | None = None
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{harness.WEBHOOK_PATH}"

    def env(self) -> dict[str, str]:
        return self.services.env(
            TELEGRAM_API_URL=self.api_url,
            LOG_LEVEL="INFO",
            TELEGRAM_CHAT_INTERVAL_SECONDS="0",
            TELEGRAM_RATE_PER_SECOND="1000",
            # The redrive sweep (beat, every 30 s) takes rows older than this.
            INBOX_REDRIVE_AFTER_SECONDS="5",
            # The production default, stated: pytest's settings put 0 in this
            # process's environment, and a generation that takes no time
            # leaves nothing to kill the worker in the middle of.
            LOCAL_PROVIDER_LATENCY_SECONDS="2",
            **self.env_extra,
        )

    def start_web(self) -> harness.Process:
        self.port = self.port or harness.free_port()
        name = f"web-{len(list(self.log_dir.glob('web-*.log')))}"
        self.web = harness.start(
            name,
            ["make", "--no-print-directory", "web", f"PORT={self.port}", "WEB_CONCURRENCY=2"],
            env=self.env(),
            log_dir=self.log_dir,
        )
        self.servers.adopt(self.web.pid)
        harness.wait_http(self.web, f"http://127.0.0.1:{self.port}/api/health", timeout=START_SECONDS)
        return self.web

    def start_worker(self) -> harness.Process:
        name = f"worker-{len(list(self.log_dir.glob('worker-*.log')))}"
        self.worker = harness.start(
            name,
            [
                str(harness.VENV_BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                "updates,generation,delivery",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            env=self.env(),
            log_dir=self.log_dir,
        )
        self.servers.adopt(self.worker.pid)
        # Traffic sent before the worker consumes would test a worker that is
        # still importing Django, not one that rides out a fault.
        wait_for_line(self.worker, WORKER_READY)
        return self.worker

    def start_beat(self) -> harness.Process:
        self.beat = harness.start(
            f"beat-{len(list(self.log_dir.glob('beat-*.log')))}",
            [
                str(harness.VENV_BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--scheduler",
                "nanobanana.ops.scheduler:HeartbeatScheduler",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.log_dir / "beat-schedule"),
            ],
            env=self.env(),
            log_dir=self.log_dir,
        )
        self.servers.adopt(self.beat.pid)
        wait_for_line(self.beat, BEAT_READY)
        return self.beat

    def post(self, update: dict[str, Any], *, secret: str = harness.WEBHOOK_SECRET, timeout: float = 10.0) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        return httpx.post(self.webhook_url, json=update, headers=headers, timeout=timeout).status_code

    def log_files(self) -> list[Path]:
        """Every log this stack captured: its processes, its management
        commands, and the servers' own logs."""
        own = sorted(self.log_dir.glob("*.log"))
        return own + [path for path in self.servers.logs().values() if path.exists()]

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.log_files())

    def manage(self, *args: str) -> str:
        try:
            output = harness.manage(self.services, *args, TELEGRAM_API_URL=self.api_url)
        except RuntimeError as error:
            output = str(error)
            raise
        finally:
            with (self.log_dir / "manage.log").open("a") as log:
                log.write(f"$ manage.py {' '.join(args)}\n{output}\n")
        return output

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def stop(self) -> None:
        for process in (self.web, self.worker, self.beat):
            if process is not None:
                process.stop()


@pytest.fixture(scope="session")
def stack(servers: own_servers.Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the whole session: starting web, worker and beat on a
    fresh database takes a minute or two on a loaded machine, and every
    module's faults must leave processes that go on working anyway."""
    fake = FakeTelegram(
        token=harness.BOT_TOKEN,
        limits=RateLimits.off(),
        auto_create_chats=True,
        webhook_secret=harness.WEBHOOK_SECRET,
        webhook_retry_delays=(0.5, 1.0, 2.0, 4.0, 8.0),
    )
    services = harness.services(pg_admin_url=servers.postgres.admin_url, redis_base_url=servers.redis.url)
    with services as found_services, run_sandbox(fake, ui=False) as api_url:
        found = Stack(
            services=found_services,
            servers=servers,
            fake=fake,
            api_url=api_url,
            log_dir=tmp_path_factory.mktemp("faults-logs"),
        )
        try:
            found.start_web()
            found.start_worker()
            found.start_beat()
            fake.webhook.url = found.webhook_url
            yield found
        finally:
            found.stop()
            scan = secret_scan(found)
            fake.close()
    if scan["outcome"] != "passed":
        pytest.fail(f"secret scan: {scan['outcome']}", pytrace=False)


# --- A person using the bot through the sandbox ----------------------------------


@dataclass
class Person:
    """One simulated Telegram user whose updates reach the real web process."""

    stack: Stack
    user_id: int

    def bot_messages(self) -> list[Any]:
        return [m for m in self.stack.fake.history(self.user_id) if m.outgoing and not m.deleted]

    def say(self, text: str) -> None:
        self.stack.fake.sync.send_text(self.user_id, text)

    def tap(self, label: str, *, timeout: float = 120.0) -> None:
        """Press the newest button whose text contains `label`, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            for message in reversed(self.bot_messages()):
                for button in message.buttons:
                    if label in button.get("text", "") and "callback_data" in button:
                        self.stack.fake.sync.press_button(self.user_id, message.message_id, button["callback_data"])
                        return
            if time.monotonic() > deadline:
                shown = [[b.get("text") for b in m.buttons] for m in self.bot_messages()[-3:]]
                raise TimeoutError(f"user {self.user_id}: no button {label!r} within {timeout} s; last: {shown}")
            time.sleep(0.1)

    def documents(self) -> list[Any]:
        return [m for m in self.bot_messages() if m.kind == "document"]

    def prepare_image(self, prompt: str) -> None:
        """/start -> create image -> the local model -> defaults -> prompt; stops at the price button."""
        self.say("/start")
        self.tap("Создать изображение")
        self.tap("Local · Fast")
        self.tap("Далее")
        self.wait_for_text("Опишите, что нарисовать")
        self.say(prompt)

    def wait_for_text(self, needle: str, *, after_count: int = 0, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in (m.text or m.caption or "") for m in self.bot_messages()[after_count:]):
                return
            time.sleep(0.1)
        raise TimeoutError(f"user {self.user_id}: no message with {needle!r}")


@pytest.fixture
def people(stack: Stack) -> Any:
    counter = iter(range(900_000 + 1000 * len(_records), 10**9))

    def make(count: int) -> list[Person]:
        found = []
        for _ in range(count):
            user_id = next(counter)
            stack.fake.user(user_id, first_name="Тест", language_code="ru")
            found.append(Person(stack, user_id))
        return found

    return make


def requests_of(stack: Stack, user_ids: list[int]) -> list[dict[str, Any]]:
    rows = stack.services.sql(
        "SELECT r.id, r.chat_id, r.status, r.delivery_status, h.status, r.error_code "
        "FROM generation_generationrequest r JOIN billing_hold h ON h.id = r.hold_id "
        "WHERE r.chat_id = ANY(%s) ORDER BY r.id",
        user_ids,
    )
    keys = ("id", "chat_id", "status", "delivery_status", "hold", "error_code")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def wait_settled(stack: Stack, user_ids: list[int], *, expected: int, timeout: float) -> list[dict[str, Any]]:
    """Wait until every request is finished and its outcome delivered (or given up)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = requests_of(stack, user_ids)
        settled = [r for r in rows if r["status"] in ("succeeded", "failed") and r["delivery_status"] != "pending"]
        if (len(rows) >= expected and len(settled) == len(rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(1.0)


SCAN_PREFIX = "(secret scan"
SCAN_ID = f"tests/faults::{SCAN_PREFIX} of every log line and Bot API call of the session)"
SECRETS = {
    "bot token": harness.BOT_TOKEN,
    "bot token's secret half": harness.BOT_TOKEN.partition(":")[2],
    "webhook secret": harness.WEBHOOK_SECRET,
    "Django secret key": harness.SECRET_KEY,
}


def secret_leaks(texts: dict[str, str | bytes], secrets: dict[str, str] = SECRETS) -> dict[str, int]:
    """How often each secret shows up in each text."""
    found = {}
    for name, secret in secrets.items():
        for where, text in texts.items():
            needle: str | bytes = secret.encode() if isinstance(text, bytes) else secret
            seen = text.count(needle)  # type: ignore[arg-type]
            if seen:
                found[f"{name} in {where}"] = seen
    return found


def bot_api_texts(fake: FakeTelegram) -> dict[str, str | bytes]:
    """Everything the bot sent to the Bot API: each call's parameters and the
    bytes of every file stored (uploads included)."""
    calls = fake.calls()
    with fake.lock:
        files = [stored.content for stored in fake.files.values()]
    return {
        f"Bot API calls ({len(calls)})": "\n".join(
            json.dumps({"method": call.method, **call.params}, ensure_ascii=False, default=str) for call in calls
        ),
        f"files ({len(files)})": b"\n".join(files),
    }


def secret_scan(stack: Stack) -> dict[str, Any]:
    """Scan every log line the stack captured and every Bot API call it got,
    over the whole session and after its processes stopped (so their last
    lines are in), and record the result as a row of the report."""
    started = time.monotonic()
    files = stack.log_files()
    texts: dict[str, str | bytes] = {path.name: path.read_text(errors="replace") for path in files}
    line_count = sum(len(str(text).splitlines()) for text in texts.values())
    api = bot_api_texts(stack.fake)
    texts.update(api)
    leaks = secret_leaks(texts)
    outcome = "passed" if not leaks else "**failed**: " + ", ".join(f"{k}: {v}" for k, v in sorted(leaks.items()))
    entry = {
        "test": SCAN_ID,
        "title": "No bot token or configured secret in any log line or Bot API call of the session",
        "lines": [
            f"scanned {line_count} log lines in {len(files)} files ({', '.join(path.name for path in files)}) "
            f"and {', '.join(api)}: leaks {leaks or 'none'}"
        ],
        "seconds": round(time.monotonic() - started, 1),
        "outcome": outcome,
    }
    _records.append(entry)
    return entry
