"""Beat's scheduler rides out a database outage instead of exiting."""

from __future__ import annotations

import datetime

import pytest
from django.db import OperationalError
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app
from nanobanana.ops.scheduler import DATABASE_RETRY_SECONDS, HeartbeatScheduler
from nanobanana.ops.schedules import schedules_sync

# Beat runs in autocommit, where a broken connection is dropped after an error.
pytestmark = pytest.mark.django_db(transaction=True)


def _outage(self: DatabaseScheduler) -> None:
    raise OperationalError("connection failed: Connection refused")


def test_a_tick_without_the_database_waits_and_the_next_one_goes_on(monkeypatch, caplog):
    scheduler = HeartbeatScheduler(app=app, lazy=True)
    assert 0 < scheduler.tick() <= 15.0
    with monkeypatch.context() as patched:
        patched.setattr(DatabaseScheduler, "enabled_models", _outage)
        # Five minutes on, django-celery-beat reads the whole schedule again.
        scheduler._last_full_sync = datetime.datetime.now() - datetime.timedelta(minutes=6)
        assert scheduler.tick() == DATABASE_RETRY_SECONDS
    assert "could not read its schedule" in caplog.text

    assert 0 < scheduler.tick() <= 15.0  # the database is back: beat ticks as before


def test_a_first_read_that_fails_is_made_again(monkeypatch):
    schedules_sync()
    scheduler = HeartbeatScheduler(app=app, lazy=True)
    with monkeypatch.context() as patched:
        patched.setattr(DatabaseScheduler, "enabled_models", _outage)
        assert scheduler.tick() == DATABASE_RETRY_SECONDS

    assert 0 < scheduler.tick() <= 15.0
    assert "nanobanana:generation-sweep" in scheduler.schedule  # read whole, not left empty
