"""The base Celery task and the one way to enqueue work.

Tasks are short shims: ids in, a service call, errors mapped here. Transient
errors become retries with exponential backoff; anything else is logged with
the task's context and dropped, because a retry would only fail again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from celery import Task, current_app
from celery.utils import uuid
from celery.utils.nodenames import anon_nodename
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


def send_many(task_name: str, args_list: Sequence[list[Any]]) -> None:
    """Hand one task per item of `args_list` to the broker now, in one round
    trip on Redis (kombu's publish batch: a pipeline). The messages are the
    ones `send_task` makes, built with the same Celery calls, without its
    per-message costs: routing and the queue declaration are done once per
    call, and `argsrepr` is a plain repr (arguments are ids).

    Nothing is retried: a broker error is raised, and the batch may be partly
    sent (callers leave the rest to a sweep; handling a task twice is a
    no-op). Tests replace this, as `send` (docs/decisions/005-webhook-group-commit.md)."""
    if not args_list:
        return
    app = current_app
    amqp = app.amqp
    options = amqp.router.route({}, task_name)
    publisher = _publisher
    try:
        producer, batch = publisher.open(app, options.get("queue"))
        for args in args_list:
            task_id = uuid()
            message = amqp.as_task_v2(
                task_id,
                task_name,
                args=tuple(args),
                argsrepr=repr(args),
                kwargsrepr="{}",
                reply_to=app.thread_oid,
                origin=publisher.origin,
                # As send_task does: None leaves it to the task's own
                # setting (a bool here would override it; the stubs want one).
                ignore_result=None,  # type: ignore[arg-type]
            )
            # retry=False: inside a batch publishing only buffers; the round
            # trip is the flush below.
            amqp.send_task_message(producer, task_name, message, declare=[], retry=False, **options)
        batch.flush()
    except BaseException as error:
        publisher.close(error)
        raise


class _Publisher(threading.local):
    """This thread's producer with a publish batch kept open between calls.

    kombu's Redis batch makes a redis-py client per batch session, which
    costs more CPU (about 0.3 ms: its callback tables) than publishing ten
    tasks; one session per thread is made once. After any error the session
    is dropped and the next call starts a new one."""

    def __init__(self) -> None:
        self.producer: Any = None
        self.batch: Any = None
        self.origin = anon_nodename()

    def open(self, app: Any, queue: Any) -> tuple[Any, Any]:
        if self.batch is None:
            producer = app.producer_pool.acquire(block=True)
            try:
                if queue is not None:
                    producer.maybe_declare(queue)  # once per connection: kombu remembers it
                batch = producer.batch()
                batch.__enter__()
            except BaseException:
                producer.release()
                raise
            self.producer, self.batch = producer, batch
        return self.producer, self.batch

    def close(self, error: BaseException | None = None) -> None:
        producer, batch = self.producer, self.batch
        self.producer = self.batch = None
        try:
            if batch is not None:
                # An error discards what was not sent yet; none flushes nothing (all was).
                batch.__exit__(type(error) if error else None, error, None)
        finally:
            if producer is not None:
                producer.release()


_publisher = _Publisher()
