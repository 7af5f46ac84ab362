"""The rollup task through a real Celery worker on Redis, and the whole path from the HTTPS emulator."""
from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from tests.fixtures.celery import wait_for
from tests.latency.factory import job, make_account, make_group
from workers.fleet import polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.latency import selectors as sel
from workers.latency.rollups import rollup_jobs
from workers.latency.tasks import rollup_job_latency
from workers.models import Job, JobHourly
from workers.rules import latency, outcomes


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_rollup_task_writes_job_rollups_through_a_real_worker(celery_worker):
    group = make_group(make_account(), "grp-task")
    Job.objects.bulk_create([job(group, timezone.now() - timedelta(minutes=30), queue=8, duration=20)])
    rollup_job_latency.delay(lookback_hours=2)
    wait_for(lambda: JobHourly.objects.filter(key=f"g:{group.pk}").exists(), "the group's hourly rollup row")
    assert JobHourly.objects.get(key=f"g:{group.pk}").completed == 1


@pytest.mark.django_db
def test_latency_from_emulator_jobs_matches_the_raw_rows_within_one_bucket(make_emulator):
    emu = make_emulator(seed=21, groups=3, workers=9, history_days=1, page_size=50, scenarios=False)
    account = add_account_from_connection_file(emu.connection_file)[0]
    now = emu.clock.now()
    polling.poll_account_once(account.pk, now=now)
    rollup_jobs(now - timedelta(days=2), now, now=now)
    span, stats = sel.latency_summary("24h", now=now)
    in_window = Job.objects.filter(group__isnull=False, created_at__gte=span.start, created_at__lte=span.end)
    queue = [q for q in in_window.values_list("queue_seconds", flat=True) if q is not None]
    assert stats.jobs == in_window.count() > 0 and stats.queue_n == len(queue)
    exact = float(np.percentile(queue, 95))
    if exact >= 1 and stats.queue.p95 >= 1:
        assert abs(math.log(stats.queue.p95) - math.log(exact)) <= math.log(latency.BUCKET_RATIO) + 1e-9
    else:
        assert abs(stats.queue.p95 - exact) <= 1.0
    queued = sel.queued_now(now=now)
    assert queued.count == in_window.model.objects.filter(
        group__isnull=False, started_at__isnull=True, ended_at__isnull=True
    ).exclude(status__in=outcomes.TERMINAL_STATUSES).count()
