"""Heartbeats and the deep health check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection

from nanobanana.core import clock
from nanobanana.ops.models import Heartbeat

WORKER = "worker"
BEAT = "beat"


def heartbeat_record(*, name: str, detail: str = "") -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": clock.now(), "detail": detail[:255]})


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    extra: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **(self.extra or {})}


def _check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return Check(False, f"database unreachable: {type(error).__name__}")
    return Check(True, connection.vendor)


def _check_broker() -> Check:
    try:
        with current_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
            transport = broker.transport_cls
    except Exception as error:  # kombu raises its own OperationalError family
        return Check(False, f"broker unreachable: {type(error).__name__}")
    return Check(True, str(transport))


def _check_storage() -> Check:
    from nanobanana.media.storage import storage_check

    ok, detail = storage_check()
    return Check(ok, detail)


def _check_heartbeat(name: str, beats: dict[str, Any]) -> Check:
    beat_at = beats.get(name)
    if beat_at is None:
        return Check(False, f"no {name} heartbeat yet", {"age_seconds": None})
    age = (clock.now() - beat_at).total_seconds()
    limit = settings.HEARTBEAT_MAX_AGE_SECONDS
    ok = age <= limit
    return Check(ok, f"last seen {age:.0f}s ago" + ("" if ok else f" (limit {limit}s)"), {"age_seconds": round(age, 1)})


def _check_inbox() -> Check:
    from nanobanana.bot.inbox import inbox_backlog

    count = inbox_backlog()
    limit = settings.INBOX_BACKLOG_LIMIT
    ok = count <= limit
    return Check(ok, f"{count} updates waiting" + ("" if ok else f" (limit {limit})"), {"count": count})


def health_deep() -> tuple[bool, dict[str, Any]]:
    """Every dependency the bot needs to serve users, each with a verdict."""
    checks: dict[str, Check] = {"database": _check_database()}
    if checks["database"].ok:
        beats = dict(Heartbeat.objects.values_list("name", "beat_at"))
        checks["worker_heartbeat"] = _check_heartbeat(WORKER, beats)
        checks["beat_heartbeat"] = _check_heartbeat(BEAT, beats)
        checks["inbox_backlog"] = _check_inbox()
    else:
        skipped = Check(False, "not checked: database unreachable")
        checks.update(worker_heartbeat=skipped, beat_heartbeat=skipped, inbox_backlog=skipped)
    checks["broker"] = _check_broker()
    checks["storage"] = _check_storage()
    ok = all(check.ok for check in checks.values())
    failing = sorted(name for name, check in checks.items() if not check.ok)
    return ok, {
        "ok": ok,
        "version": settings.RELEASE_VERSION,
        "failing": failing,
        "checks": {name: check.as_dict() for name, check in checks.items()},
    }
