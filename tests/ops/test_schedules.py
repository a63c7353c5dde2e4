"""Beat's schedules are written from code, idempotently."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from nanobanana.catalog.models import AIModel
from nanobanana.ops.schedules import PREFIX, SCHEDULES, schedules_sync

pytestmark = pytest.mark.django_db


def test_sync_writes_every_schedule_with_its_interval_and_expiry():
    schedules_sync()
    for schedule in SCHEDULES:
        task = PeriodicTask.objects.get(name=PREFIX + schedule.name)
        assert (task.task, task.enabled, task.expire_seconds) == (schedule.task, True, schedule.expires_seconds)
        assert (task.interval.every, task.interval.period) == (schedule.every_seconds, IntervalSchedule.SECONDS)


def test_sync_twice_changes_nothing():
    schedules_sync()
    before = list(PeriodicTask.objects.order_by("name").values_list("name", "task", "interval_id", "enabled"))
    schedules_sync()
    after = list(PeriodicTask.objects.order_by("name").values_list("name", "task", "interval_id", "enabled"))
    assert before == after


def test_a_schedule_removed_from_code_is_disabled_and_foreign_ones_are_left_alone():
    interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name=PREFIX + "retired", task="ops.retired", interval=interval)
    PeriodicTask.objects.create(name="operator: nightly report", task="reports.nightly", interval=interval)
    schedules_sync()
    assert PeriodicTask.objects.get(name=PREFIX + "retired").enabled is False
    assert PeriodicTask.objects.get(name="operator: nightly report").enabled is True


def test_every_scheduled_task_is_registered_with_celery():
    from celery import current_app
    from django.apps import apps

    for app in apps.get_app_configs():
        if app.name.startswith("nanobanana.") and importlib.util.find_spec(f"{app.name}.tasks"):
            importlib.import_module(f"{app.name}.tasks")
    assert [s.task for s in SCHEDULES if s.task not in current_app.tasks] == []


def test_setup_defaults_seeds_the_catalog_and_schedules(capsys):
    call_command("setup_defaults")
    call_command("setup_defaults")
    assert AIModel.objects.filter(slug="local-fast").exists()
    assert PeriodicTask.objects.filter(name__startswith=PREFIX, enabled=True).count() == len(SCHEDULES)
    assert "catalog: 0 created" in capsys.readouterr().out.splitlines()[-1]
