"""The Celery application shared by worker, beat and the web process."""

from __future__ import annotations

import os
import signal
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("nanobanana")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def pool_children_ignore_sigint(**_: Any) -> None:
    """Ctrl-C in a terminal signals the whole process group, pool children
    included. A child that dies of it mid-way can leave the pool's queue lock
    taken, and the main process then hangs in its warm shutdown (seen with
    `make run`: killed after 30 s). The main process owns shutdown: it gets
    the signal too and stops its children in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@task_prerun.connect
@task_postrun.connect
def database_connections_checked(sender: Any = None, **_: Any) -> None:
    """Between tasks, what Django does between web requests: drop a
    connection that is broken or older than CONN_MAX_AGE, and keep the rest
    (Celery's own fixup would close every one: see CELERY_DB_REUSE_MAX)."""
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
