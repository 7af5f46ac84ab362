"""The history backfill (``workers.fleet.backfill``), what ``manage.py demo`` runs before it prints its
URL: the emulator's whole history through the real SDK, every rollup, and a capacity snapshot that
names the under-spec machine first. Also the demo's SITE_URL, which email links are built from."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db.models import Count
from django.test import override_settings

from tests.fixtures.emulator import EMULATOR_NOW
from workers.alerting.content import site_url
from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.backfill import MINUTE_HISTORY, backfill_account
from workers.fleet.log_reading import fleet_machines, read_logs
from workers.fleet.polling import azure_client, close_clients
from workers.fleet.rollups import rollup_utilization
from workers.fleet.telemetry import ingest_utilization
from workers.models import CapacityRun, Job, UtilizationHourly, UtilizationSample
from workers.models.analytics import JobHourly

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY_DAYS = 2


@pytest.fixture
def history(make_emulator):
    """A private emulator with two days of history (longer than POLL_BACKFILL_HOURS), registered."""
    emu = make_emulator(seed=7, groups=4, workers=20, history_days=HISTORY_DAYS, page_size=500)
    account, _ = add_account_from_connection_file(str(emu.connection_file), "history")
    yield emu, account
    close_clients()


@pytest.mark.slow
@override_settings(POLL_BACKFILL_HOURS=24)
def test_backfill_ingests_the_whole_history_rollups_and_the_under_spec_finding(history):
    emu, account = history
    now = EMULATOR_NOW
    since = now - timedelta(days=HISTORY_DAYS, hours=1)
    with time_machine.travel(now, tick=False):
        steps = backfill_account(account.pk, since=since, now=now)
    assert [s.name for s in steps] == ["inventory", "jobs", "utilization history", "log analytics", "statuses", "rollups", "capacity"]
    assert all(s.ok for s in steps), [s.line() for s in steps]

    # Jobs: exactly the emulator's ground truth, spanning its whole history (not POLL_BACKFILL_HOURS).
    sim = emu.simulation
    assert Job.objects.count() == len(sim.jobs)
    oldest = Job.objects.order_by("created_at").values_list("created_at", flat=True).first()
    assert oldest is not None and oldest < now - timedelta(days=HISTORY_DAYS) + timedelta(hours=1)
    # Utilization: minutes for the last day (from the start of the hour 25 h back), hours before that.
    minutes_from = (now - MINUTE_HISTORY).replace(minute=0, second=0, microsecond=0)
    first_sample = UtilizationSample.objects.order_by("ts").values_list("ts", flat=True).first()
    assert first_sample is not None and minutes_from <= first_sample < minutes_from + timedelta(minutes=5)
    first_hour = UtilizationHourly.objects.order_by("hour").values_list("hour", flat=True).first()
    assert first_hour is not None and first_hour <= since + timedelta(hours=1)
    # Every worker has an hourly row for every hour of the history (none is missing, none doubled).
    hours = int((now - since) / timedelta(hours=1))
    per_worker = UtilizationHourly.objects.values("worker_id").annotate(n=Count("id"))
    assert len(per_worker) == 20 and all(hours - 2 <= r["n"] <= hours + 1 for r in per_worker), list(per_worker)

    # Rollups cover the history, not the last two hours.
    assert UtilizationHourly.objects.filter(hour__lt=now - timedelta(days=1)).exists()
    assert JobHourly.objects.filter(hour__lt=now - timedelta(days=1)).exists()

    # The capacity snapshot of every window exists; the 7-day one names the under-spec machine first.
    assert set(CapacityRun.objects.values_list("window", flat=True)) == {"24h", "7d", "30d"}
    week = CapacityRun.objects.filter(window="7d").latest("computed_at")
    top = week.findings.order_by("rank").select_related("worker").first()
    assert top is not None and top.flagged
    assert top.worker is not None and top.worker.name in sim.under_spec_workers()


@override_settings(POLL_BACKFILL_HOURS=24)
def test_a_second_backfill_reads_only_the_gap(history):
    """A restart of the demo on an existing var/ must not read the whole history again."""
    emu, account = history
    now = EMULATOR_NOW
    since = now - timedelta(days=HISTORY_DAYS, hours=1)
    with time_machine.travel(now, tick=False):
        account.jobs_watermark = account.perf_watermark = account.heartbeat_watermark = now
        account.events_watermark = now
        account.save()
        steps = {s.name: s for s in backfill_account(account.pk, since=since, now=now)}
    assert steps["jobs"].rows < len(emu.simulation.jobs) / 10
    assert steps["log analytics"].rows <= 20 * (settings.POLL_OVERLAP_SECONDS // 60 + 1)


def test_the_demo_points_email_links_at_its_own_port(monkeypatch):
    from dashboard.management.commands.demo import use_demo_site_url

    monkeypatch.delenv("SITE_URL", raising=False)
    with override_settings(SITE_URL="http://127.0.0.1:8000"):
        assert use_demo_site_url(8777) == "http://127.0.0.1:8777"
        assert site_url("/workers/3/") == "http://127.0.0.1:8777/workers/3/"
    assert os.environ["SITE_URL"] == "http://127.0.0.1:8777"  # what the Celery worker inherits


@override_settings(POLL_BACKFILL_HOURS=24)
def test_hourly_history_equals_the_rollup_of_the_same_minutes(history):
    """The workspace's hourly summary (older history) and our rollup of the stored minutes (the last
    day and every routine poll) are one rule: the same hours give the same rows, computed both ways."""
    emu, account = history
    now = EMULATOR_NOW
    since = now - timedelta(days=HISTORY_DAYS, hours=1)
    with time_machine.travel(now, tick=False):
        backfill_account(account.pk, since=since, now=now)
        t0 = (now - timedelta(hours=40)).replace(minute=0, second=0, microsecond=0)
        t1 = t0 + timedelta(hours=3)

        def rows() -> dict:
            qs = UtilizationHourly.objects.filter(hour__gte=t0, hour__lt=t1)
            return {(r.worker_id, r.hour): (r.cpu_avg, r.cpu_max, r.mem_avg, r.mem_max, r.samples) for r in qs}

        from_workspace = rows()
        assert len(from_workspace) == 20 * 3
        assert not UtilizationSample.objects.filter(ts__gte=t0, ts__lt=t1).exists()
        UtilizationHourly.objects.filter(hour__gte=t0, hour__lt=t1).delete()
        # Perf, and InsightsMetrics for the VM insights machines, as the routine poll reads them.
        ingest_utilization(account, read_logs(azure_client(account), "utilization", fleet_machines(account), start=t0, end=t1).rows)
        rollup_utilization(t0, t1)
        from_minutes = rows()
    assert from_minutes.keys() == from_workspace.keys()
    for key, ours in from_minutes.items():
        theirs = from_workspace[key]
        assert theirs[4] == ours[4], key
        assert theirs[:4] == pytest.approx(ours[:4], rel=1e-9, abs=1e-9), key
