"""What every benchmark shares: the quick switch, the machine description,
a throw-away Postgres database, the app's environment, and real processes.

Benchmarks run the production code in real processes (uvicorn, Celery, the
sandbox Bot API) against the machine's PostgreSQL and Redis. Each run gets
its own database (`nanobanana_bench_<pid>`), dropped afterwards, and Redis
database BENCH_REDIS_DB (default 11), emptied before and after; the test
suite uses database 15, so the two never meet. Two benchmarks on the
machine's servers never run at once (`BENCH_LOCK`): they would empty each
other's Redis database (queued tasks vanish) and share the cores they
measure, so the second waits for the first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from nanobanana.core.process import proc_stat

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "11"))
# Obvious fakes: the bot never reaches Telegram in a benchmark.
BOT_TOKEN = "123456:BENCH-token-for-the-fake-bot-api"
WEBHOOK_SECRET = "bench-webhook-secret"
SECRET_KEY = "bench-secret-key-that-is-long-enough-for-the-checks-0123456789"
WEBHOOK_PATH = "/api/telegram/webhook"
BENCH_LOCK = Path(tempfile.gettempdir()) / "nanobanana-bench.lock"


def quick() -> bool:
    """BENCH_QUICK=1: shorter durations, same code paths (for CI and smoke runs)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


# --- The machine -------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    # "commit <sha>": a bare hex string in the JSON reads as a secret to the scan.
    return f"commit {out.stdout.strip()[:12]}" + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def machine(*, pg_admin_url: str = PG_ADMIN_URL, redis_base_url: str = REDIS_BASE_URL) -> dict[str, Any]:
    """Everything needed to compare a number with another run's."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        postgres = row[0] if row else "unknown"
    client = redis.Redis.from_url(f"{redis_base_url}/0")
    try:
        redis_version = str(client.info("server").get("redis_version", "unknown"))
    finally:
        client.close()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_sha": _git_sha(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": postgres,
        "redis": redis_version,
        "mode": "quick (BENCH_QUICK=1)" if quick() else "full",
    }


# --- Services ------------------------------------------------------------------


@dataclass
class Services:
    """Connection URLs of one benchmark's database and Redis."""

    database_url: str
    redis_url: str
    data_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a production-configured process of ours."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "TELEGRAM_", "TG_", "DATABASE_", "REDIS_", "CELERY_", "SANDBOX_"))
        }
        env.update(
            {
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": SECRET_KEY,
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "TG_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
                "TELEGRAM_API_URL": "http://127.0.0.1:9",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "NANOBANANA_DATA_DIR": str(self.data_dir),
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params or None).fetchall()

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)


@contextlib.contextmanager
def services(
    *, migrate: bool = True, pg_admin_url: str = PG_ADMIN_URL, redis_base_url: str = REDIS_BASE_URL
) -> Iterator[Services]:
    """A fresh Postgres database (migrated) and an emptied Redis database, on
    the machine's servers unless given others (the fault suite runs its own)."""
    with contextlib.ExitStack() as stack:
        if redis_base_url == REDIS_BASE_URL:  # the machine's servers, shared with any other benchmark
            stack.enter_context(_only_benchmark())
        yield from _services(migrate=migrate, pg_admin_url=pg_admin_url, redis_base_url=redis_base_url)


@contextlib.contextmanager
def _only_benchmark() -> Iterator[None]:
    """Hold BENCH_LOCK; if another benchmark holds it, say so and wait."""
    with BENCH_LOCK.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another benchmark is running on this machine ({BENCH_LOCK}); waiting for it", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _services(*, migrate: bool, pg_admin_url: str, redis_base_url: str) -> Iterator[Services]:
    name = f"nanobanana_bench_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_admin_url.rsplit("/", 1)[0]
    data_dir = Path(tempfile.mkdtemp(prefix="nanobanana-bench-"))
    found = Services(database_url=f"{base}/{name}", redis_url=f"{redis_base_url}/{REDIS_DB}", data_dir=data_dir)
    client = found.redis()
    client.flushdb()
    try:
        if migrate:
            manage(found, "migrate", "--noinput", "-v", "0")
            manage(found, "setup_defaults")
        yield found
    finally:
        client.flushdb()
        client.close()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def manage(found: Services, *args: str, **env: str) -> str:
    """Run a management command against the benchmark's services."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=found.env(**env), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- Processes ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A child process in its own process group, with its output in a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    children: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_mib(self) -> float:
        """Resident memory of the process and all its descendants."""
        return sum(_rss_kib(pid) for pid in [self.pid, *_descendants(self.pid)]) / 1024

    def pss_mib(self) -> float:
        """Proportional memory of the process and its descendants: pages they
        share (a prefork pool's parent and children share what the parent
        imported) counted once in all, so this is what they cost together."""
        return sum(_pss_kib(pid) for pid in [self.pid, *_descendants(self.pid)]) / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the process and its living descendants."""
        return sum(_cpu_seconds(pid) for pid in [self.pid, *_descendants(self.pid)])

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(10)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from one pass over /proc (the samplers call
    this twice a second while a benchmark runs; a scan per level cost the
    benchmark process a fifth of its CPU)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    pending = list(children.get(pid, ()))
    while pending:
        child = pending.pop()
        found.append(child)
        pending += children.get(child, ())
    return found


def _cpu_seconds(pid: int) -> float:
    fields = proc_stat(pid)
    if fields is None or len(fields) < 13:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of_programs(*names: str) -> dict[str, float]:
    """CPU seconds (user + system) used so far by every process on the
    machine whose program name is one of `names` (e.g. `postgres`,
    `redis-server`): servers whose work a benchmark causes in processes it
    did not start. Exited processes no longer count."""
    found = dict.fromkeys(names, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            comm = (entry / "comm").read_text().strip()
            if comm in found:
                found[comm] += _cpu_seconds(int(entry.name))
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, everything
    but idle and I/O wait) since boot, from /proc/stat."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return 0.0


def own_cpu_seconds() -> float:
    """CPU seconds of this process (every thread), e.g. the in-process sandbox."""
    return _cpu_seconds(os.getpid())


def load_average() -> float:
    """The machine's 1-minute load average: how shared the cores were."""
    return round(os.getloadavg()[0], 2)


def _pss_kib(pid: int) -> int:
    return _proc_kib(pid, "smaps_rollup", "Pss:")


def _rss_kib(pid: int) -> int:
    return _proc_kib(pid, "status", "VmRSS:")


def _proc_kib(pid: int, name: str, field: str) -> int:
    """A kB figure from /proc/<pid>/<name>; 0 when the process is gone."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def start(name: str, command: Sequence[str], *, env: dict[str, str], log_dir: Path) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        list(command), cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    return Process(name=name, popen=popen, log=log)


@contextlib.contextmanager
def profiled(process: Process, name: str) -> Iterator[None]:
    """py-spy over `process` and its children for the block, when
    BENCH_PROFILE_DIR is set: `<dir>/<name>.txt`, collapsed stacks (one line
    per stack with its sample count; `--gil` leaves out threads that only
    wait). Without the variable this does nothing."""
    folder = os.environ.get("BENCH_PROFILE_DIR", "")
    if not folder:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(folder) / f"{name}.txt"
    command = [str(Path(PYTHON).with_name("py-spy")), "record", "--pid", str(process.pid), "--subprocesses"]
    command += ["--gil", "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


def wait_http(process: Process, url: str, *, timeout: float = 30.0, expect: tuple[int, ...] = (200,)) -> None:
    """Wait until `url` answers one of `expect`, or fail with the process's output."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.output()[-4000:]}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code in expect:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            last = type(error).__name__
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{process.name} did not answer {url} ({last}):\n{process.output()[-4000:]}")


def uvicorn_command(app: str, *, port: int, workers: int, extra: Sequence[str] = ()) -> list[str]:
    """Uvicorn as `make web` runs it in production (the settings under test)."""
    return [
        str(VENV_BIN / "uvicorn"),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        *extra,
    ]


def task_totals(folder: Path) -> dict[str, list[float]]:
    """Per task name over every pool process of a worker started with
    BENCH_TASK_TIMES_DIR=folder (bench/apps/vendor_worker.py): [runs, CPU
    seconds, wall seconds] so far."""
    totals: dict[str, list[float]] = {}
    for path in folder.glob("[0-9]*.json"):
        for name, (count, cpu, wall) in json.loads(path.read_text()).items():
            entry = totals.setdefault(name, [0, 0.0, 0.0])
            entry[0] += count
            entry[1] += cpu
            entry[2] += wall
    return totals


def task_times(folder: Path, *, since: dict[str, list[float]] | None = None) -> dict[str, dict[str, float]]:
    """`task_totals` as runs, and CPU and wall milliseconds per run; with
    `since` (an earlier `task_totals`), only the runs after it."""
    totals = task_totals(folder)
    for name, earlier in (since or {}).items():
        totals[name] = [now - before for now, before in zip(totals.get(name, [0, 0.0, 0.0]), earlier, strict=True)]
    return {
        name: {"count": int(count), "cpu_ms": round(cpu * 1000 / count, 1), "wall_ms": round(wall * 1000 / count, 1)}
        for name, (count, cpu, wall) in sorted(totals.items())
        if count > 0
    }


def task_table(times: dict[str, dict[str, float]]) -> list[str]:
    """`task_times` as markdown table lines."""
    return [
        "| task | runs | CPU ms per run | wall ms per run |",
        "|---|---|---|---|",
        *(f"| `{name}` | {t['count']} | {t['cpu_ms']} | {t['wall_ms']} |" for name, t in times.items()),
    ]
