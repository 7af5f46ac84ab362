"""The capacity refresh task through a real Celery worker on a real Redis broker."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone

from dashboard.celery import app
from tests.capacity.data import build_fleet
from tests.fixtures.celery import wait_for
from workers.capacity.tasks import refresh_capacity
from workers.models import CapacityRun

REFRESH_DEADLINE_SECONDS = 90  # three capacity windows on a shared 2-core machine


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_refresh_task_stores_a_run_with_the_under_spec_finding_through_a_real_worker(celery_worker):
    fleet = build_fleet(now=timezone.now(), hours=24, seed=5)
    refresh_capacity.delay("24h")
    wait_for(lambda: CapacityRun.objects.filter(window="24h").exists(), "a 24h capacity run", timeout=REFRESH_DEADLINE_SECONDS)
    run = CapacityRun.objects.get(window="24h")
    first = run.findings.order_by("rank").select_related("worker").first()
    assert first.flagged and first.worker.name == fleet.under_spec


def test_the_beat_entry_expires_after_one_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["capacity-refresh"]
    assert entry["task"] == "workers.capacity.tasks.refresh_capacity"
    assert entry["task"] in app.tasks
    assert entry["options"]["expires"] == entry["schedule"] == float(settings.CAPACITY_REFRESH_SECONDS)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_fans_out_one_run_per_window_through_a_real_worker(celery_worker):
    build_fleet(now=timezone.now(), hours=24, seed=5)
    refresh_capacity.delay()
    wait_for(lambda: set(CapacityRun.objects.values_list("window", flat=True)) == {"24h", "7d", "30d"}, "a run for every window",
             timeout=REFRESH_DEADLINE_SECONDS)
