"""/api/health: fast liveness, and the deep check that names what is broken."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError

from nanobanana.bot.models import InboxUpdate
from nanobanana.core import clock
from nanobanana.ops.models import Heartbeat
from nanobanana.ops.services import BEAT, WORKER, heartbeat_record
from nanobanana.ops.tasks import heartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_heartbeats():
    heartbeat_record(name=WORKER)
    heartbeat_record(name=BEAT)


def test_fast_health_reports_the_version_without_touching_the_database(client, settings, django_assert_num_queries):
    settings.RELEASE_VERSION = "abc123"
    with django_assert_num_queries(0):
        response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "version": "abc123"}


def test_health_answers_the_railway_health_check_host(client):
    assert client.get("/api/health", HTTP_HOST="healthcheck.railway.app").status_code == 200


def test_an_unknown_host_is_refused(client):
    assert client.get("/api/health", HTTP_HOST="evil.example").status_code == 400


def test_deep_health_is_green_when_everything_runs(client, fresh_heartbeats):
    response = client.get("/api/health?deep=1")
    body = response.json()
    assert response.status_code == 200, body
    assert body["failing"] == []
    assert set(body["checks"]) == {
        "database",
        "broker",
        "storage",
        "worker_heartbeat",
        "beat_heartbeat",
        "inbox_backlog",
    }


def test_a_stopped_worker_fails_the_deep_check_by_name(client, settings, fresh_heartbeats):
    stale = clock.now() - timedelta(seconds=settings.HEARTBEAT_MAX_AGE_SECONDS + 5)
    Heartbeat.objects.filter(name=WORKER).update(beat_at=stale)
    response = client.get("/api/health?deep=1")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker_heartbeat"]
    assert "limit" in body["checks"]["worker_heartbeat"]["detail"]


def test_a_beat_that_never_ran_fails_the_deep_check(client):
    heartbeat_record(name=WORKER)
    response = client.get("/api/health?deep=1")
    assert response.status_code == 503
    assert response.json()["failing"] == ["beat_heartbeat"]


def test_an_inbox_backlog_over_the_limit_fails_the_deep_check(client, settings, fresh_heartbeats):
    settings.INBOX_BACKLOG_LIMIT = 2
    for update_id in range(3):
        InboxUpdate.objects.create(update_id=update_id, payload={"update_id": update_id})
    waiting_since = clock.now() - timedelta(seconds=settings.INBOX_REDRIVE_AFTER_SECONDS + 5)
    InboxUpdate.objects.update(received_at=waiting_since)
    body = client.get("/api/health?deep=1").json()
    assert body["failing"] == ["inbox_backlog"]
    assert body["checks"]["inbox_backlog"]["count"] == 3


def test_a_database_outage_is_named_and_skips_what_needs_the_database(client, monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr("nanobanana.ops.services.connection.cursor", broken)
    response = client.get("/api/health?deep=1")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": False, "detail": "database unreachable: DatabaseError"}
    assert checks["worker_heartbeat"]["detail"] == "not checked: database unreachable"


def test_a_broken_storage_is_named(client, monkeypatch, fresh_heartbeats):
    monkeypatch.setattr("nanobanana.media.storage.storage_check", lambda: (False, "media folder is not writable"))
    body = client.get("/api/health?deep=1").json()
    assert body["failing"] == ["storage"]
    assert body["checks"]["storage"]["detail"] == "media folder is not writable"


def test_the_worker_heartbeat_task_records_its_host(db):
    heartbeat.apply(throw=True)
    beat = Heartbeat.objects.get(name=WORKER)
    assert ":" in beat.detail
    assert (clock.now() - beat.beat_at).total_seconds() < 60


def test_health_refuses_post(client):
    assert client.post("/api/health").status_code == 405
