"""The base Celery task and the one way to enqueue work.

Tasks are short shims: ids in, a service call, errors mapped here. Transient
errors become retries with exponential backoff; anything else is logged with
the task's context and dropped, because a retry would only fail again.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app
from django.db import transaction

from nanobanana.core.errors import AppError, ProviderTransientError, TransientError

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300


class AppTask(Task):  # type: ignore[misc,type-arg,unused-ignore]
    """Base for every task: explicit time limits, retries for transient errors."""

    abstract = True
    max_retries = 8
    retry_backoff_base = 2.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.time_limit is None or self.soft_time_limit is None:
            raise RuntimeError(f"task {self.name} must declare time_limit and soft_time_limit")
        try:
            return super().__call__(*args, **kwargs)
        except (TransientError, ProviderTransientError) as error:
            retries = self.request.retries or 0
            countdown = error.retry_after or min(MAX_BACKOFF_SECONDS, self.retry_backoff_base ** (retries + 1))
            logger.warning(
                "task retry",
                extra={"task": self.name, "task_id": self.request.id, "retries": retries, "error": str(error)},
            )
            raise self.retry(exc=error, countdown=countdown) from error
        except AppError as error:
            logger.warning(
                "task gave up",
                extra={"task": self.name, "task_id": self.request.id, "code": error.code, "error": str(error)},
            )
            return None


def enqueue(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send a task by name once the current transaction commits.

    Sending by name keeps domain apps from importing the transports that own
    the task (generation does not import the bot)."""

    transaction.on_commit(lambda: send(task_name, list(args), countdown))


def send(task_name: str, args: list[Any], countdown: float | None) -> None:
    """Hand a task to the broker now. Tests replace this to run tasks inline."""
    current_app.send_task(task_name, args=args, countdown=countdown)
