"""The capacity refresh task through a real Celery worker on a real Redis broker."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from dashboard.celery import app
from tests.workers.capacity_data import build_fleet
from workers.models import CapacityRun
from workers.tasks_capacity import refresh_capacity

DEADLINE_SECONDS = 90


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds or the deadline passes (no fixed sleeps)."""
    end = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < end:
        close_old_connections()
        if condition():
            return
        time.sleep(0.1)  # polling interval; the condition decides
    raise AssertionError(f"timed out after {DEADLINE_SECONDS} s waiting for {what}")


@pytest.fixture
def celery_worker(redis_url: str) -> Iterator[None]:
    """The project's Celery app on Redis with one real worker thread."""
    saved = {k: app.conf.get(k) for k in ("broker_url", "result_backend", "broker_transport_options", "task_always_eager")}
    app.conf.update(broker_url=redis_url, result_backend=redis_url, broker_transport_options={}, task_always_eager=False)
    app._pool = None
    app.amqp._producer_pool = None
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30):
            yield
    finally:
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_refresh_task_stores_a_run_with_the_under_spec_finding_through_a_real_worker(celery_worker):
    fleet = build_fleet(now=timezone.now(), hours=24, seed=5)
    refresh_capacity.delay("24h")
    wait_for(lambda: CapacityRun.objects.filter(window="24h").exists(), "a 24h capacity run")
    run = CapacityRun.objects.get(window="24h")
    first = run.findings.order_by("rank").select_related("worker").first()
    assert first.flagged and first.worker.name == fleet.under_spec


def test_the_beat_entry_expires_after_one_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["capacity-refresh"]
    assert entry["task"] == "workers.tasks_capacity.refresh_capacity"
    assert entry["task"] in app.tasks
    assert entry["options"]["expires"] == entry["schedule"] == float(settings.CAPACITY_REFRESH_SECONDS)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_fans_out_one_run_per_window_through_a_real_worker(celery_worker):
    build_fleet(now=timezone.now(), hours=24, seed=5)
    refresh_capacity.delay()
    wait_for(lambda: set(CapacityRun.objects.values_list("window", flat=True)) == {"24h", "7d", "30d"}, "a run for every window")
