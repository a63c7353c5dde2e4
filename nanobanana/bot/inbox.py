"""The inbox: Telegram updates are stored first, handled after.

Services for the webhook, the long-polling loop, the update task and the
re-drive sweep."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

from nanobanana.bot.models import InboxStatus, InboxUpdate
from nanobanana.core import clock
from nanobanana.core import tasks as core_tasks
from nanobanana.core.tasks import enqueue

TASK_HANDLE = "bot.handle_update"
TASK_HANDLE_MANY = "bot.handle_updates"
# Updates stored together are handled this many to a task (decision 005,
# amendment): one broker message per chunk instead of per update, and a
# person's updates of one chunk are handled in order. Small, because a
# chunk's updates share one worker slot.
HANDLE_CHUNK = 10
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IncomingUpdate:
    """One update to store: its id, its JSON text (valid for the database's
    JSON type: no U+0000, no lone surrogates), and whether the caller has
    already handled it (a pre-checkout query answered in the webhook reply)."""

    update_id: int
    payload_json: str
    handled: bool = False


@dataclass(frozen=True, slots=True)
class InboxInsert:
    """What `inbox_insert_many` did: the ids it stored, and of those the
    ones to queue for handling (not the handled ones)."""

    stored: frozenset[int]
    to_queue: list[int]


def inbox_store_many(*, updates: Sequence[IncomingUpdate]) -> set[int]:
    """Store updates with one statement and queue the new ones for handling
    in one broker round trip, once the caller's transaction (if any) commits.
    Returns the ids stored now; an id already in the inbox (a redelivery, or
    twice in `updates`) is stored and queued once.

    All or nothing: a `DatabaseError` means none of them was stored. Once the
    rows are committed the updates are safe: if the broker cannot take the
    tasks (Redis down), the re-drive sweep queues them later, so that is
    logged, not raised."""
    inserted = inbox_insert_many(updates=updates)
    if inserted.to_queue:
        transaction.on_commit(lambda: inbox_queue(update_ids=inserted.to_queue))
    return set(inserted.stored)


def inbox_store(*, update_id: int, payload: dict[str, Any], handled: bool = False) -> bool:
    """Store one update and queue it (see `inbox_store_many`). Returns False
    for a duplicate `update_id` (already stored; nothing is queued again).

    `handled`: the webhook answered it itself (a pre-checkout query); it is
    kept for the record, already done, and never queued."""
    update = IncomingUpdate(update_id=update_id, payload_json=json.dumps(payload), handled=handled)
    return update_id in inbox_store_many(updates=[update])


def inbox_insert_many(*, updates: Sequence[IncomingUpdate]) -> InboxInsert:
    """Insert updates with one multi-row INSERT that skips ids already stored;
    queues nothing (`inbox_queue` does, after the commit). In autocommit the
    statement is its own transaction: the rows are committed when this
    returns, at the cost of one round trip and one WAL flush for all of them
    (an explicit BEGIN and COMMIT would add two round trips). Inside a
    transaction it joins it. A `DatabaseError` means no row was inserted.

    Handled updates are stored already done."""
    unique: dict[int, IncomingUpdate] = {}
    for update in updates:
        unique.setdefault(update.update_id, update)
    if not unique:
        return InboxInsert(stored=frozenset(), to_queue=[])
    now = connection.ops.adapt_datetimefield_value(clock.now())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_postgres_insert_sql(), _postgres_params(list(unique.values()), now))
        else:
            cursor.execute(_insert_sql(len(unique)), _rows(list(unique.values()), now))
        stored = frozenset(row[0] for row in cursor.fetchall())
    to_queue = [update.update_id for update in unique.values() if update.update_id in stored and not update.handled]
    return InboxInsert(stored=stored, to_queue=to_queue)


def inbox_queue(*, update_ids: list[int]) -> None:
    """Queue stored updates for handling, `HANDLE_CHUNK` to a task (a
    message costs the web process more than storing its rows), in one broker
    round trip. A broker failure is logged, not raised: the rows are stored,
    and the re-drive sweep queues them later."""
    if not update_ids:
        return
    chunks = [update_ids[start : start + HANDLE_CHUNK] for start in range(0, len(update_ids), HANDLE_CHUNK)]
    try:
        core_tasks.send_many(TASK_HANDLE_MANY, [[chunk] for chunk in chunks])
    except Exception as error:  # the broker's errors vary by transport; the rows are stored either way
        logger.warning(
            "updates stored but not queued; the re-drive sweep will queue them",
            extra={"update_ids": update_ids[:20], "count": len(update_ids), "error_type": type(error).__name__},
        )


_COLUMNS = ("update_id", "payload", "status", "attempts", "error", "received_at", "started_at", "handled_at")


def _names() -> tuple[str, str, str]:
    """The table, its columns in `_COLUMNS` order, and the key column, quoted.
    Every column is named: Django's defaults (`attempts`, `error`,
    `received_at`) live in Python, not in the table."""
    meta = InboxUpdate._meta
    quote = connection.ops.quote_name
    column = {field.name: str(field.column) for field in meta.concrete_fields}
    return quote(meta.db_table), ", ".join(quote(column[name]) for name in _COLUMNS), quote(column["update_id"])


def _postgres_insert_sql() -> str:
    """PostgreSQL: the rows travel as one JSON array and `jsonb_to_recordset`
    turns it into rows. The statement has the same text for any number of
    rows, so psycopg converts its placeholders once (cached); a VALUES list
    with 8 placeholders a row is converted again for every batch, about
    25 us a row in Python (py-spy: 37 % of the web process's GIL samples)."""
    table, names, key = _names()
    return (
        f"INSERT INTO {table} ({names}) "  # noqa: S608 - names from the model, values are parameters
        "SELECT u.update_id, u.payload, CASE WHEN u.handled THEN %s ELSE %s END, 0, '', %s, "
        "CASE WHEN u.handled THEN %s::timestamptz END, CASE WHEN u.handled THEN %s::timestamptz END "
        "FROM jsonb_to_recordset(%s::jsonb) AS u(update_id bigint, payload jsonb, handled boolean) "
        f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
    )


def _postgres_params(updates: list[IncomingUpdate], now: Any) -> list[Any]:
    # Built as text: each payload is already JSON (checked by the webhook, or
    # made by json.dumps), and update_id an int.
    rows = ",".join(
        f'{{"update_id":{int(update.update_id)},"handled":{"true" if update.handled else "false"},'
        f'"payload":{update.payload_json}}}'
        for update in updates
    )
    return [InboxStatus.DONE.value, InboxStatus.PENDING.value, now, now, now, f"[{rows}]"]


def _insert_sql(count: int) -> str:
    """Other databases (SQLite >= 3.35 for local runs): a VALUES list.
    bulk_create cannot say which rows were new, and only those may be queued."""
    table, names, key = _names()
    row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    return (
        f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * count)} "  # noqa: S608 - names from the model, values are parameters
        f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
    )


def _rows(updates: list[IncomingUpdate], now: Any) -> list[Any]:
    rows: list[Any] = []
    for update in updates:
        if update.handled:
            rows += [update.update_id, update.payload_json, InboxStatus.DONE.value, 0, "", now, now, now]
        else:
            rows += [update.update_id, update.payload_json, InboxStatus.PENDING.value, 0, "", now, None, None]
    return rows


def inbox_claim(*, update_id: int) -> InboxUpdate | None:
    """Take a pending update for handling; None if someone else has it or it is done."""
    claimed = InboxUpdate.objects.filter(update_id=update_id, status=InboxStatus.PENDING).update(
        status=InboxStatus.PROCESSING, started_at=clock.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return InboxUpdate.objects.get(update_id=update_id)


def inbox_finish(*, update_id: int) -> None:
    InboxUpdate.objects.filter(update_id=update_id, status=InboxStatus.PROCESSING).update(
        status=InboxStatus.DONE, handled_at=clock.now(), error=""
    )


def inbox_retry_later(*, update_id: int, error: str) -> None:
    """A transient failure: back to pending for the re-drive sweep, until the
    attempt limit, after which it is parked as failed for an operator."""
    InboxUpdate.objects.filter(
        update_id=update_id, status=InboxStatus.PROCESSING, attempts__lt=settings.INBOX_MAX_ATTEMPTS
    ).update(status=InboxStatus.PENDING, error=error[:2000])
    inbox_fail(update_id=update_id, error=error)


def inbox_fail(*, update_id: int, error: str) -> None:
    InboxUpdate.objects.filter(update_id=update_id, status=InboxStatus.PROCESSING).update(
        status=InboxStatus.FAILED, handled_at=clock.now(), error=error[:2000]
    )


def inbox_redrive() -> int:
    """Queue again what was stored but not handled: pending rows whose task
    was lost, and rows stuck in processing by a worker that died."""
    cutoff = clock.now() - timedelta(seconds=settings.INBOX_REDRIVE_AFTER_SECONDS)
    with transaction.atomic():
        stuck = InboxUpdate.objects.filter(status=InboxStatus.PROCESSING, started_at__lt=cutoff)
        stuck.filter(attempts__gte=settings.INBOX_MAX_ATTEMPTS).update(
            status=InboxStatus.FAILED, error="gave up after repeated crashes"
        )
        stuck.update(status=InboxStatus.PENDING)
        ids = list(
            InboxUpdate.objects.filter(status=InboxStatus.PENDING)
            .filter(Q(started_at__lt=cutoff) | Q(started_at__isnull=True, received_at__lt=cutoff))
            .order_by("update_id")
            .values_list("update_id", flat=True)[:1000]
        )
        for update_id in ids:
            enqueue(TASK_HANDLE, update_id)
    return len(ids)


def inbox_backlog() -> int:
    """Updates stored but not handled yet (for the deep health check)."""
    cutoff = clock.now() - timedelta(seconds=settings.INBOX_REDRIVE_AFTER_SECONDS)
    return InboxUpdate.objects.filter(
        status__in=(InboxStatus.PENDING, InboxStatus.PROCESSING), received_at__lt=cutoff
    ).count()
