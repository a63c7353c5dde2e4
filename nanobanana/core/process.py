"""Which process this is, and whether another one on this machine has ended.

A claim on a request (a poll asking the vendor, a delivery sending files)
records the process that took it. Until the claim's lease runs out, nobody
else may take it: the holder could still be at work. When the holder is
known to be gone, that caution buys nothing (a dead process sends nothing
more), so the sweep can give the claim back at once instead of minutes later.

"Known to be gone" needs proof: the holder ran on this machine since its
last boot, and its pid is free or taken by a process that started at
another moment (Linux's start time in /proc/<pid>/stat, so a reused pid is
not mistaken for the holder). A holder on another machine, or anything that
cannot be read, counts as alive: the lease decides then, as before.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_SEPARATOR = "|"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_identity: tuple[int, str] | None = None


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, so index 0 is
    field 3 (the state), 1 the parent pid, 11 and 12 the user and system CPU
    ticks, 19 the start time; None without such a process (or /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat[stat.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks after boot, or None without it."""
    fields = proc_stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def _machine() -> str | None:
    """This machine since its last boot: host name and boot id."""
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        return None
    return f"{socket.gethostname()}{_SEPARATOR}{boot}"


def identity_of(pid: int) -> str:
    """A running process as a claim records it ("host|boot id|pid|start
    time"), or "" where /proc cannot say (not Linux, or no such process)."""
    machine, started = _machine(), _start_time(pid)
    return _SEPARATOR.join((machine, str(pid), started)) if machine and started else ""


def this_process() -> str:
    """`identity_of` this process ("" leaves its claims to their lease).

    Worked out once per process; a forked child (a Celery pool process)
    works out its own."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, identity_of(pid))
    return _identity[1]


def this_machine_prefix() -> str:
    """The start every identity of a process on this machine (this boot) has; "" if unknown."""
    machine = _machine()
    return f"{machine}{_SEPARATOR}" if machine else ""


def process_gone(identity: str) -> bool:
    """True only when `identity` names a process of this machine and boot that
    no longer runs; False for a living one, another machine's, or nonsense."""
    prefix = this_machine_prefix()
    if not prefix or not identity.startswith(prefix):
        return False
    pid_text, _, started = identity[len(prefix) :].partition(_SEPARATOR)
    if not pid_text.isdigit() or not started.isdigit():
        return False
    return _start_time(int(pid_text)) != started
