from __future__ import annotations

import os
import socket

from celery import shared_task

from nanobanana.core.tasks import AppTask
from nanobanana.ops.reconciliation import reconcile_and_alert
from nanobanana.ops.services import WORKER, heartbeat_record


@shared_task(name="ops.heartbeat", base=AppTask, time_limit=30, soft_time_limit=20)
def heartbeat() -> None:
    """Proves the whole path works: beat scheduled it, the broker carried it,
    a worker ran it."""
    heartbeat_record(name=WORKER, detail=f"{socket.gethostname()}:{os.getpid()}")


@shared_task(name="ops.reconcile", base=AppTask, time_limit=300, soft_time_limit=280)
def reconcile() -> int:
    """Daily (beat): the ledger and payments checked; the ops chat told of any problem."""
    return reconcile_and_alert()
