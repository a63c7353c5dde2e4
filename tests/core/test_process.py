"""Telling a process that ended from one that runs, on this machine only."""

from __future__ import annotations

import os

from nanobanana.core import process
from nanobanana.core.process import process_gone, this_machine_prefix, this_process
from tests.processes import ended_process


def test_this_process_names_machine_boot_pid_and_start_time():
    identity = this_process()
    assert identity.startswith(this_machine_prefix())
    assert identity.split("|")[2] == str(os.getpid())
    assert not process_gone(identity)


def test_a_process_that_ended_is_gone():
    identity = ended_process()
    assert identity
    assert process_gone(identity)


def test_a_reused_pid_is_not_the_process_that_had_it():
    machine_pid, _, started = this_process().rpartition("|")
    assert process_gone(f"{machine_pid}|{int(started) + 1}")  # this pid, another start time


def test_another_machine_or_boot_is_never_judged():
    ended = ended_process()
    host, boot, pid, started = ended.split("|")
    assert not process_gone(f"other-host|{boot}|{pid}|{started}")
    assert not process_gone(f"{host}|00000000-0000-0000-0000-000000000000|{pid}|{started}")


def test_nonsense_and_empty_holders_count_as_alive():
    for identity in ("", "garbage", f"{this_machine_prefix()}12x|5", f"{this_machine_prefix()}|"):
        assert not process_gone(identity)


def test_a_forked_child_works_out_its_own_identity():
    parent = this_process()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, without pytest's exit handlers
        os.write(writer, this_process().encode())
        os._exit(0)
    os.close(writer)
    child = os.read(reader, 1000).decode()
    os.waitpid(pid, 0)
    assert child != parent
    assert child.split("|")[2] == str(pid)


def test_without_proc_nothing_is_claimed_or_judged(monkeypatch):
    ended = ended_process()  # gone, as this machine could tell with /proc
    assert process_gone(ended)
    monkeypatch.setattr(process, "_machine", lambda: None)
    monkeypatch.setattr(process, "_identity", None)
    assert this_process() == ""
    assert this_machine_prefix() == ""
    assert not process_gone(ended)  # without it, no holder is judged
