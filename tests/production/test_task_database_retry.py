"""A Celery task that meets an unreachable database is retried with backoff, by a real worker on
Redis, and does its work once the database is back."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from celery.signals import task_retry
from django.db import OperationalError
from django.utils import timezone

from tests.fixtures.celery import wait_for
from tests.fixtures.web import make_account
from tests.production.conftest import database_unreachable
from workers.fleet import tasks
from workers.models import PollKind, PollRun


def test_every_task_retries_database_errors_with_backoff():
    """Every task Celery knows of ours (every capability), found through the app's registry."""
    from dashboard.celery import app
    from workers.task_options import MAX_RETRIES

    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.startswith("workers.")}
    assert {"workers.fleet.tasks.poll_jobs", "workers.alerting.tasks.send_pending_notifications",
            "workers.latency.tasks.rollup_job_latency", "workers.capacity.tasks.refresh_capacity"} <= set(ours)
    for name, task in ours.items():
        assert OperationalError in task.autoretry_for, name
        assert task.retry_backoff and task.retry_jitter and task.max_retries == MAX_RETRIES, name


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_retries_while_the_database_is_down_then_does_its_work(celery_worker):
    run = PollRun.objects.create(account=make_account(), kind=PollKind.JOBS, started_at=timezone.now() - timedelta(hours=1))
    retried = threading.Event()
    reasons: list[BaseException] = []

    def on_retry(sender=None, reason=None, **_kwargs):
        if sender is not None and sender.name == tasks.close_abandoned_polls.name:
            reasons.append(reason)
            retried.set()

    task_retry.connect(on_retry, weak=False)
    try:
        with database_unreachable():
            tasks.close_abandoned_polls.delay()
            wait_for(retried.is_set, "the task to meet the database error and be scheduled for a retry")
        assert isinstance(getattr(reasons[0], "exc", None), OperationalError), reasons
        wait_for(lambda: PollRun.objects.get(pk=run.pk).finished_at is not None, "the retried task to close the poll")
    finally:
        task_retry.disconnect(on_retry)
    closed = PollRun.objects.get(pk=run.pk)
    assert closed.ok is False and "never finished" in closed.error
