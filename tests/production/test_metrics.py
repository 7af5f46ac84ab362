"""/metrics: scraped, parsed with prometheus_client's own parser, and compared with the database."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from dashboard.celery import app
from tests.fixtures.web import make_account
from workers.fleet import tasks
from workers.latency.rollups import rollup_jobs
from workers.models import (
    Alert,
    AlertKind,
    Job,
    Notification,
    NotificationKind,
    NotificationStatus,
    PollKind,
    PollRun,
    StatusChange,
)

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _run(account, kind, *, at, seconds: float, ok=True, error="", rows=0, finished=True):
    return PollRun.objects.create(account=account, kind=kind, started_at=at - timedelta(seconds=seconds),
                                  finished_at=at if finished else None, duration_ms=int(seconds * 1000) if finished else None,
                                  ok=ok, error=error, rows=rows)


def test_it_needs_a_login_or_token(client, read_token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {read_token}").status_code == 200


def test_poll_figures_match_the_poll_runs(client_in, now):
    a, b = make_account("east"), make_account("west")
    _run(a, PollKind.JOBS, at=now - timedelta(minutes=5), seconds=0.4, rows=120)
    _run(a, PollKind.JOBS, at=now - timedelta(minutes=3), seconds=3, rows=30)
    _run(a, PollKind.JOBS, at=now - timedelta(minutes=2), seconds=40, ok=False, error="transient: 429 Too Many Requests")
    _run(a, PollKind.WORKERS, at=now - timedelta(minutes=1), seconds=1, ok=False, error="AuthorizationFailed")
    _run(b, PollKind.HEARTBEAT, at=now - timedelta(seconds=90), seconds=2, rows=7)
    _run(b, PollKind.HEARTBEAT, at=now - timedelta(hours=2), seconds=2, rows=1000)  # outside the hour
    _run(b, PollKind.PERF, at=now, seconds=0, finished=False)
    m = scrape(client_in)

    assert value(m, "hrw_poll_runs_last_hour", account="east", kind="jobs", outcome="ok") == 2
    assert value(m, "hrw_poll_runs_last_hour", account="east", kind="jobs", outcome="transient") == 1
    assert value(m, "hrw_poll_runs_last_hour", account="east", kind="workers", outcome="failed") == 1
    assert value(m, "hrw_poll_runs_last_hour", account="west", kind="heartbeat", outcome="ok") == 1
    assert value(m, "hrw_poll_rows_last_hour", account="east", kind="jobs") == 150
    assert value(m, "hrw_poll_rows_last_hour", account="west", kind="heartbeat") == 7
    ok_jobs = {"account": "east", "kind": "jobs", "outcome": "ok"}
    assert value(m, "hrw_poll_duration_seconds_last_hour_bucket", le="0.5", **ok_jobs) == 1
    assert value(m, "hrw_poll_duration_seconds_last_hour_bucket", le="2.5", **ok_jobs) == 1
    assert value(m, "hrw_poll_duration_seconds_last_hour_bucket", le="5.0", **ok_jobs) == 2
    assert value(m, "hrw_poll_duration_seconds_last_hour_bucket", le="+Inf", **ok_jobs) == 2
    assert value(m, "hrw_poll_duration_seconds_last_hour_gcount", **ok_jobs) == 2
    assert value(m, "hrw_poll_duration_seconds_last_hour_gsum", **ok_jobs) == pytest.approx(3.4)
    assert value(m, "hrw_poll_last_success_age_seconds", account="east", kind="jobs") == 180
    assert value(m, "hrw_poll_last_success_age_seconds", account="west", kind="heartbeat") == 90
    assert ("hrw_poll_last_success_age_seconds", (("account", "east"), ("kind", "workers"))) not in m
    assert value(m, "hrw_polls_in_flight", kind="perf") == 1


def test_alerting_figures_match_the_outbox_notifications_and_alerts(client_in, small_fleet, now):
    w = small_fleet.workers[0]
    StatusChange.objects.create(worker=w, old_status="online", new_status="offline", created_at=now - timedelta(seconds=75))
    StatusChange.objects.create(worker=w, old_status="offline", new_status="online", created_at=now - timedelta(seconds=10))
    for i, (kind, status, attempts) in enumerate([
        (NotificationKind.ALERT, NotificationStatus.SENT, 1), (NotificationKind.ALERT, NotificationStatus.SENT, 2),
        (NotificationKind.ALERT, NotificationStatus.FAILED, 8), (NotificationKind.RECOVERY, NotificationStatus.PENDING, 2),
        (NotificationKind.RECOVERY, NotificationStatus.PENDING, 0),
    ]):
        Notification.objects.create(kind=kind, status=status, attempts=attempts, dedupe_key=f"k{i}", subject="s",
                                    body_text="b", created_at=now)
    Alert.objects.create(kind=AlertKind.WORKER_DOWN, account=small_fleet.account, opened_at=now)
    Alert.objects.create(kind=AlertKind.WORKER_DOWN, account=small_fleet.account, opened_at=now)
    Alert.objects.create(kind=AlertKind.BLIND, account=small_fleet.account, opened_at=now)
    Alert.objects.create(kind=AlertKind.BLIND, account=small_fleet.account, opened_at=now, state="resolved", resolved_at=now)
    m = scrape(client_in)

    unprocessed = StatusChange.objects.filter(processed_at__isnull=True)
    assert value(m, "hrw_alert_outbox_backlog") == unprocessed.count() == 3  # the fixture's own change too
    assert value(m, "hrw_alert_outbox_oldest_age_seconds") == 7200
    assert value(m, "hrw_notifications", kind="alert", status="sent") == 2
    assert value(m, "hrw_notifications", kind="alert", status="failed") == 1
    assert value(m, "hrw_notifications", kind="recovery", status="pending") == 2
    assert value(m, "hrw_notifications_retrying") == 1
    assert value(m, "hrw_alerts_open", kind="worker_down") == 2
    assert value(m, "hrw_alerts_open", kind="blind") == 1


def test_worker_and_job_latency_figures_match_the_database(client_in, small_fleet, now):
    rollup_jobs(now - timedelta(hours=3), now, now=now)
    m = scrape(client_in)

    for account, group, status in [("acct", g.name, s) for g in small_fleet.groups for s in ("online", "offline")]:
        assert value(m, "hrw_workers", account=account, group=group, status=status) == 1
    assert value(m, "hrw_last_poll_age_seconds") == 20
    for g in small_fleet.groups:
        jobs = Job.objects.filter(group=g)
        queue = sorted(j.queue_seconds for j in jobs if j.queue_seconds is not None)
        durations = sorted(j.duration_seconds for j in jobs if j.duration_seconds is not None)
        labels = {"account": "acct", "group": g.name}
        assert value(m, "hrw_job_queue_delay_seconds_last_24h_gcount", **labels) == len(queue) == 3
        assert value(m, "hrw_job_queue_delay_seconds_last_24h_gsum", **labels) == pytest.approx(sum(queue))
        assert value(m, "hrw_job_queue_delay_seconds_last_24h_bucket", le="4.0", **labels) == 0
        assert value(m, "hrw_job_queue_delay_seconds_last_24h_bucket", le="16.0", **labels) == sum(q < 16 for q in queue)
        assert value(m, "hrw_job_duration_seconds_last_24h_bucket", le="16.0", **labels) == 0
        assert value(m, "hrw_job_duration_seconds_last_24h_bucket", le="64.0", **labels) == sum(d < 64 for d in durations)
        assert value(m, "hrw_job_duration_seconds_last_24h_bucket", le="+Inf", **labels) == len(durations)


def test_the_job_latency_histograms_are_reused_until_the_next_jobs_poll(client_in, small_fleet, now):
    """Their text is the costly part of a scrape at estate scale: it is rendered once per jobs poll
    (and per minute at most); every other family is read afresh on every scrape."""
    from workers.models import AutomationAccount

    rollup_jobs(now - timedelta(hours=3), now, now=now)
    group = small_fleet.groups[0]
    labels = {"account": "acct", "group": group.name}
    first = scrape(client_in)
    assert value(first, "hrw_job_queue_delay_seconds_last_24h_gcount", **labels) == 3
    Job.objects.filter(group=group).update(queue_seconds=None)
    rollup_jobs(now - timedelta(hours=3), now, now=now)
    StatusChange.objects.create(worker=small_fleet.workers[0], old_status="offline", new_status="online", created_at=now)
    m = scrape(client_in)
    assert value(m, "hrw_job_queue_delay_seconds_last_24h_gcount", **labels) == 3  # the same poll's text
    assert value(m, "hrw_alert_outbox_backlog") == value(first, "hrw_alert_outbox_backlog") + 1  # read afresh
    # A jobs poll lands (its watermark moves): the next scrape shows the new rollups.
    AutomationAccount.objects.update(jobs_watermark=now)
    assert value(scrape(client_in), "hrw_job_queue_delay_seconds_last_24h_gcount", **labels) == 0



def test_it_reports_the_celery_queue_length_of_a_redis_broker(client_in, own_redis):
    with override_settings(CELERY_BROKER_URL=own_redis.url, CELERY_BROKER_TRANSPORT_OPTIONS={}):
        # A plain kombu connection: the app's own would keep a configured filesystem transport.
        with Connection(own_redis.url) as conn:
            for _ in range(3):
                tasks.refresh_statuses.apply_async(connection=conn, queue=app.conf.task_default_queue)
        m = scrape(client_in)
        assert value(m, "hrw_celery_queue_length", queue=app.conf.task_default_queue) == 3
        assert value(m, "hrw_celery_broker_up") == 1
        own_redis.stop()
        m = scrape(client_in)
        assert value(m, "hrw_celery_broker_up") == 0
        assert not [k for k in m if k[0] == "hrw_celery_queue_length"]
    with override_settings(CELERY_BROKER_URL="filesystem://"):
        assert not [k for k in scrape(client_in) if k[0].startswith("hrw_celery")]


@pytest.mark.redis
def test_it_reports_arm_responses_and_429s_that_every_worker_shares(client_in, own_redis, make_emulator):
    """The throttle counts ARM responses and 429s in Redis; /metrics (another process in production)
    reads the counts back: both must equal what the emulator served."""
    import dataclasses

    from workers.azure.client import AzureClient
    from workers.azure.connection import connection_from_file
    from workers.azure.errors import AzureTransientError
    from workers.azure.throttle import reset_throttles

    handle = make_emulator(seed=9, groups=2, workers=6, scenarios=False)
    handle.server.configure_arm_throttle(2, 0.5)  # a tiny service bucket: 429s come quickly
    conn = dataclasses.replace(connection_from_file(handle.connection_file), retry_total=0)
    with override_settings(REDIS_URL=own_redis.url, ARM_THROTTLE_ENABLED=True, ARM_READS_BUCKET=1000,
                           ARM_READS_REFILL_PER_SECOND=1000, ARM_THROTTLE_MAX_WAIT_SECONDS=0):
        reset_throttles()
        try:
            with AzureClient(conn) as client:
                for _ in range(6):
                    try:
                        client.list_groups()
                    except AzureTransientError:
                        pass
            m = scrape(client_in)
        finally:
            reset_throttles()
    responses = [v for (name, _labels), v in m.items() if name == "hrw_arm_responses_total"]
    throttled = [v for (name, _labels), v in m.items() if name == "hrw_arm_throttled_total"]
    assert responses and throttled
    assert handle.server.throttled_count > 0
    assert throttled[0] == handle.server.throttled_count
    assert responses[0] >= 2 + handle.server.throttled_count
