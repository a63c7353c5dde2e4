"""Throw-away PostgreSQL and Redis servers for the fault suite.

The outage tests stop and start the database and the broker. Other work on
this machine (tests, benchmarks, other people) uses the machine's own
servers, so the suite never touches them: it runs a PostgreSQL cluster of
its own (`initdb` into a temporary directory, `pg_ctl` on a free port) and a
`redis-server` of its own on another free port, and removes both when the
session ends, also when it fails.

PostgreSQL refuses to run as root. Under uid 0 every PostgreSQL command runs
as the `postgres` OS user (`runuser`), in a directory that user owns.

A watchdog process stops both servers and removes their directory if the
test process dies without cleaning up (SIGKILL, a CI job cancelled), so a
crashed run never leaves servers behind on a shared machine.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

POSTGRES_OS_USER = "postgres"
ADOPTED = "process-groups"
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path:
    """The newest PostgreSQL server binaries on the machine."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _as_postgres(command: Sequence[str]) -> list[str]:
    """`command` as the user PostgreSQL agrees to run as."""
    if os.geteuid() == 0:
        return ["runuser", "-u", POSTGRES_OS_USER, "--", *command]
    return list(command)


def _run(command: Sequence[str], *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Postgres:
    """One PostgreSQL cluster in `directory`, listening on 127.0.0.1:`port`."""

    directory: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return _run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]), timeout=timeout + 30)

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.directory}",
                # A throw-away cluster: durability buys nothing, and the
                # machine's disk is shared with other work.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        result = self._pg_ctl(
            "-l", str(self.log), "-o", options, "-w", "-t", str(int(START_TIMEOUT)), "start", timeout=START_TIMEOUT
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({result.returncode}): {result.stderr}\n{self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: disconnect clients and shut down cleanly; `immediate`: as a crash)."""
        if not (self.data / "postmaster.pid").exists():
            return
        result = self._pg_ctl("-m", mode, "-w", "-t", str(int(START_TIMEOUT)), "stop")
        if result.returncode != 0 and (self.data / "postmaster.pid").exists():
            raise RuntimeError(f"pg_ctl stop failed ({result.returncode}): {result.stderr}")

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Redis:
    """One redis-server on 127.0.0.1:`port`: no snapshots, no append-only file."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server without a database number (callers add `/<db>`)."""
        return f"redis://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.log),
            "--pidfile",
            str(self.pidfile),
            "--daemonize",
            "no",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT:g} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: with no snapshots configured Redis exits at once, data gone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def ready(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Servers:
    postgres: Postgres
    redis: Redis

    def logs(self) -> dict[str, Path]:
        return {"postgres": self.postgres.log, "redis": self.redis.log}

    def adopt(self, process_group: int) -> None:
        """Have the watchdog kill this process group (a web, worker or beat
        started in a session of its own) if the test process dies first."""
        with (self.postgres.directory / ADOPTED).open("a") as adopted:
            adopted.write(f"{process_group}\n")


def _start_postgres(directory: Path) -> Postgres:
    """initdb, then start on a free port; another port if someone took it
    between our probe and the server's bind (a real race, not flakiness)."""
    bin_dir = postgres_bin()
    data = directory / "data"
    result = _run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
    )
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}): {result.stderr}")
    last: Exception | None = None
    for _ in range(3):
        server = Postgres(directory=directory, port=free_port(), bin=bin_dir)
        try:
            server.start()
        except RuntimeError as error:
            last = error
            continue
        return server
    raise RuntimeError(f"PostgreSQL did not start: {last}")


def _start_redis(directory: Path) -> Redis:
    last: Exception | None = None
    for _ in range(3):
        server = Redis(directory=directory, port=free_port())
        try:
            server.start()
        except RuntimeError as error:
            last = error
            continue
        return server
    raise RuntimeError(f"redis-server did not start: {last}")


WATCHDOG = """
import os, shutil, signal, subprocess, sys, time
parent, pg_ctl, data, redis_pidfile, directory, root = int(sys.argv[1]), *sys.argv[2:7]
as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    if not os.path.isdir(directory):
        sys.exit(0)
    time.sleep(2)
# The suite's processes first (they would keep reconnecting), each only if
# it still runs in the repository (a reused id is someone else's).
try:
    groups = [int(line) for line in open(os.path.join(directory, "process-groups")) if line.strip()]
except (OSError, ValueError):
    groups = []
for group in groups:
    try:
        if os.readlink(f"/proc/{group}/cwd") == root:
            os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run([*as_postgres, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True, check=False)
try:
    # The pid file may be stale: only a process working in our folder
    # (redis-server changes into its --dir) is ours to kill.
    redis_pid = int(open(redis_pidfile).read().strip())
    if os.readlink(f"/proc/{redis_pid}/cwd") == os.path.dirname(redis_pidfile):
        os.kill(redis_pid, signal.SIGKILL)
except (OSError, ValueError):
    pass
shutil.rmtree(directory, ignore_errors=True)
"""


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """A PostgreSQL cluster and a Redis server of our own, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="nanobanana-faults-servers-"))
    # Reachable by the postgres user: mkdtemp makes it 0700 and ours.
    if os.geteuid() == 0:
        user = pwd.getpwnam(POSTGRES_OS_USER)
        os.chown(directory, user.pw_uid, user.pw_gid)
    postgres: Postgres | None = None
    redis_server: Redis | None = None
    watchdog: subprocess.Popen[bytes] | None = None
    try:
        postgres = _start_postgres(directory)
        redis_dir = directory / "redis"
        redis_dir.mkdir()
        redis_server = _start_redis(redis_dir)
        watchdog = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WATCHDOG,
                str(os.getpid()),
                str(postgres.bin / "pg_ctl"),
                str(postgres.data),
                str(redis_server.pidfile),
                str(directory),
                str(ROOT),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not kill it before we clean up
        )
        yield Servers(postgres=postgres, redis=redis_server)
    finally:
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                postgres.stop("immediate")
        if watchdog is not None:
            with contextlib.suppress(ProcessLookupError):
                watchdog.send_signal(signal.SIGTERM)
            watchdog.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
