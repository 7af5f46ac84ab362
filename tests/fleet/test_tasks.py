"""The Celery tasks through a REAL Redis broker and a REAL Celery worker (in-process thread).

The emulator runs on a real-time clock here, so the tasks' own ``timezone.now()`` matches the
simulated fleet. DB effects are awaited by polling with a deadline, never by sleeping a fixed time.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fixtures.celery import DEADLINE_SECONDS, wait_for
from workers.fleet import tasks
from workers.fleet.accounts import add_account_from_connection_file
from workers.models import AutomationAccount, HybridWorker, Job, PollRun, StatusChange, UtilizationHourly, UtilizationSample, WorkerGroup


@pytest.fixture
def live_account(make_emulator) -> tuple[AutomationAccount, object]:
    emu = make_emulator(seed=5, groups=3, workers=6, history_days=1 / 24, page_size=4, scenarios=False, realtime=True, start=None)
    return add_account_from_connection_file(emu.connection_file)[0], emu


def test_the_retry_countdown_honours_retry_after():
    assert tasks.retry_countdown(0, 30.0) == 30.0


def test_the_retry_countdown_backs_off_exponentially_up_to_a_cap():
    assert 2.5 <= tasks.retry_countdown(0, None) <= 5.0
    assert 10.0 <= tasks.retry_countdown(2, None) <= 20.0
    assert tasks.retry_countdown(20, None) <= tasks.BACKOFF_MAX_SECONDS


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_poll_all_workers_fans_out_and_ingests_every_worker(celery_worker, live_account):
    account, emu = live_account
    tasks.poll_all_workers.delay()
    wait_for(lambda: HybridWorker.objects.exclude(status="unknown").count() == 6, "6 workers with a status")
    assert WorkerGroup.objects.filter(account=account).count() == len(emu.simulation.groups)
    assert PollRun.objects.filter(kind="workers", ok=True).count() == WorkerGroup.objects.count()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_poll_all_jobs_ingests_jobs_and_advances_the_watermark(celery_worker, live_account):
    account, _ = live_account
    tasks.poll_all_workers.delay()
    wait_for(lambda: PollRun.objects.filter(kind="workers", ok=True).count() == 3, "worker polls")
    tasks.poll_all_jobs.delay()
    wait_for(lambda: PollRun.objects.filter(kind="jobs", ok=True).exists(), "a successful jobs poll")
    account.refresh_from_db()
    assert account.jobs_watermark is not None
    assert Job.objects.filter(account=account).count() == PollRun.objects.get(kind="jobs").rows > 0


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_poll_all_logs_ingests_heartbeats_and_utilization(celery_worker, live_account):
    tasks.poll_all_workers.delay()
    wait_for(lambda: PollRun.objects.filter(kind="workers", ok=True).count() == 3, "worker polls")
    tasks.poll_all_logs.delay()
    wait_for(lambda: PollRun.objects.filter(kind="events", ok=True).exists(), "the log polls")
    assert HybridWorker.objects.filter(last_heartbeat_at__isnull=False).count() == 6
    assert UtilizationSample.objects.exists()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_transient_error_is_retried_until_the_poll_succeeds(celery_worker, live_account, monkeypatch):
    account, emu = live_account
    monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0.2)
    emu.inject_fault("503", count=3, route="arm")  # the adapter's own retries use up all three
    tasks.poll_groups.delay(account.pk)
    wait_for(lambda: PollRun.objects.filter(kind="groups", ok=True).exists(), "a successful retry")
    first = PollRun.objects.filter(kind="groups").order_by("started_at", "pk").first()
    assert first.ok is False and "transient" in first.error


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_refresh_statuses_task_writes_the_change_once(celery_worker, live_account):
    account, _ = live_account
    group = WorkerGroup.objects.create(account=account, azure_id="/g", name="g")
    worker = HybridWorker.objects.create(
        group=group, azure_id="/g/w", worker_id="w", name="w", status="online",
        last_seen_at=timezone.now() - timedelta(hours=2), last_heartbeat_at=timezone.now() - timedelta(hours=2),
    )
    # Twice, as a retried or duplicated beat tick would; wait on the real results backend.
    first = tasks.refresh_statuses.apply_async(ignore_result=False)
    second = tasks.refresh_statuses.apply_async(ignore_result=False)
    assert sorted([first.get(timeout=DEADLINE_SECONDS), second.get(timeout=DEADLINE_SECONDS)]) == [0, 1]
    assert HybridWorker.objects.get(pk=worker.pk).status == "offline"
    assert StatusChange.objects.filter(worker=worker).count() == 1


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_rollup_recent_task_writes_hourly_rows(celery_worker, live_account):
    account, _ = live_account
    group = WorkerGroup.objects.create(account=account, azure_id="/g", name="g")
    worker = HybridWorker.objects.create(group=group, azure_id="/g/w", worker_id="w", name="w")
    UtilizationSample.objects.create(worker=worker, ts=timezone.now().replace(second=0, microsecond=0), cpu_pct=42.0)
    tasks.rollup_recent.delay()
    wait_for(lambda: UtilizationHourly.objects.filter(worker=worker).exists(), "an hourly rollup row")
    assert UtilizationHourly.objects.get(worker=worker).cpu_avg == 42.0


@pytest.mark.django_db
def test_a_poll_of_a_deleted_group_is_skipped_not_failed():
    assert tasks.poll_group_workers.apply(args=(999, 999)).get() == 0


@pytest.mark.django_db
def test_a_poll_of_a_deleted_account_is_skipped_not_failed():
    assert tasks.poll_jobs.apply(args=(999,)).get() == 0


@pytest.mark.django_db
def test_the_fan_out_creates_the_environment_account_first(settings, monkeypatch):
    monkeypatch.setattr(tasks, "_env_account_checked", False)
    monkeypatch.setattr(tasks.poll_jobs, "apply_async", lambda *a, **k: None)
    settings.HRW_SUBSCRIPTION_ID, settings.HRW_RESOURCE_GROUP, settings.HRW_AUTOMATION_ACCOUNT = "sub", "rg", "aa"
    assert tasks.poll_all_jobs.apply().get() == 1
    assert AutomationAccount.objects.get().automation_account == "aa"


@pytest.mark.django_db
def test_the_fan_out_sends_no_second_poll_while_one_still_runs(settings, monkeypatch):
    sent: list[tuple] = []
    monkeypatch.setattr(tasks, "_env_account_checked", True)
    for task in (tasks.poll_jobs, tasks.poll_logs, tasks.poll_pings):
        monkeypatch.setattr(task, "apply_async", lambda args, task=task, **k: sent.append((task.name, args)))
    busy = AutomationAccount.objects.create(name="busy", subscription_id="s", resource_group="rg", automation_account="a1",
                                            workspace_id="w1")
    idle = AutomationAccount.objects.create(name="idle", subscription_id="s", resource_group="rg", automation_account="a2",
                                            workspace_id="w2")
    now = timezone.now()
    for kind in ("jobs", "perf", "ping"):  # running now (a slow poll), on the busy account only
        PollRun.objects.create(account=busy, kind=kind, scope="", started_at=now - timedelta(seconds=50))
    # A run a killed process left open longer than the hard limit does not block (the sweep closes it).
    PollRun.objects.create(account=idle, kind="jobs", scope="",
                           started_at=now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 5))
    # Finished runs never block.
    PollRun.objects.create(account=idle, kind="heartbeat", scope="", started_at=now, finished_at=now, ok=True)
    # One logs task per table: the busy account's Perf is still running, its Heartbeat and Event are not.
    assert (tasks.poll_all_jobs.apply().get(), tasks.poll_all_logs.apply().get(), tasks.poll_all_pings.apply().get()) == (1, 5, 1)
    assert sorted(sent) == sorted([("workers.fleet.tasks.poll_jobs", (idle.pk,)),
                    ("workers.fleet.tasks.poll_logs", (busy.pk, "heartbeat")), ("workers.fleet.tasks.poll_logs", (idle.pk, "heartbeat")),
                    ("workers.fleet.tasks.poll_logs", (idle.pk, "perf")),
                    ("workers.fleet.tasks.poll_logs", (busy.pk, "events")), ("workers.fleet.tasks.poll_logs", (idle.pk, "events")),
                    ("workers.fleet.tasks.poll_pings", (idle.pk,))])
    PollRun.objects.filter(account=busy).update(finished_at=now, ok=True)
    sent.clear()
    tasks.poll_all_jobs.apply().get()
    assert sorted(a for _n, (a,) in sent) == sorted([busy.pk, idle.pk])


@pytest.mark.django_db(transaction=True)
def test_a_jobs_poll_after_a_long_gap_rolls_up_the_hours_of_the_gap(make_emulator, settings):
    """Polling was down for 6 h (longer than JOB_ROLLUP_LOOKBACK_HOURS): the jobs that arrive belong to
    hours the routine rollup no longer looks at, so the jobs task rolls those hours up itself."""
    import time_machine

    from workers.fleet import polling
    from workers.models import JobHourly

    settings.JOB_ROLLUP_LOOKBACK_HOURS = 3
    emu = make_emulator(seed=5, groups=3, workers=6, history_days=1, page_size=500, scenarios=False)
    account = add_account_from_connection_file(emu.connection_file)[0]
    now = emu.clock.now()
    AutomationAccount.objects.filter(pk=account.pk).update(jobs_watermark=now - timedelta(hours=6))
    with time_machine.travel(now, tick=False):
        polling.poll_groups(account.pk, now=now)
        assert not JobHourly.objects.exists()
        tasks.poll_jobs.apply(args=[account.pk])
    old_hours = Job.objects.filter(created_at__lt=now - timedelta(hours=4), created_at__gte=now - timedelta(hours=6), group__isnull=False)
    assert old_hours.exists()
    hours = {j.created_at.replace(minute=0, second=0, microsecond=0) for j in old_hours}
    rolled = set(JobHourly.objects.filter(hour__in=hours).values_list("hour", flat=True))
    assert hours <= rolled, sorted(hours - rolled)
