"""A worker process keeps its Postgres connection from task to task."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup  # type: ignore[attr-defined]  # missing from celery-types
from django.db import connection

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


class WorkerTask:
    """What the signal handlers read of a task a worker runs (not eager)."""

    request = SimpleNamespace(is_eager=False)


def run_tasks(count: int) -> set[int]:
    """Fire the signals a worker fires around `count` tasks, each running a
    query; returns the ids of the Postgres backends that served them."""
    task: Any = WorkerTask()
    backends = set()
    for _ in range(count):
        signals.task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.add(cursor.fetchone()[0])
        signals.task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    return backends


@pytest.fixture
def worker_fixup(settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    fixup = DjangoWorkerFixup(app)
    fixup.install()
    yield fixup
    signals.task_prerun.disconnect(fixup.on_task_prerun)
    signals.task_postrun.disconnect(fixup.on_task_postrun)
    signals.worker_process_init.disconnect(fixup.on_worker_process_init)


def test_tasks_reuse_one_connection(worker_fixup):
    assert worker_fixup.db_reuse_max == 1000
    assert len(run_tasks(5)) == 1


def test_without_the_reuse_setting_every_task_would_open_a_new_connection(worker_fixup):
    worker_fixup.db_reuse_max = None  # Celery's default
    assert len(run_tasks(3)) == 3


def test_a_broken_connection_is_replaced_before_the_next_task(worker_fixup):
    first = run_tasks(1)
    connection.errors_occurred = True
    connection.connection.close()  # the server went away under us
    second = run_tasks(1)
    assert first != second
