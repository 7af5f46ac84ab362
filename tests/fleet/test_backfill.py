"""The history backfill (``workers.fleet.backfill``), what ``manage.py demo`` runs before it prints its
URL: the emulator's whole history through the real SDK, every rollup, and a capacity snapshot that
names the under-spec machine first. Also the demo's SITE_URL, which email links are built from."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import override_settings

from tests.fixtures.emulator import EMULATOR_NOW
from workers.alerting.content import site_url
from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.backfill import backfill_account
from workers.fleet.polling import close_clients
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
    assert [s.name for s in steps] == ["inventory", "jobs", "log analytics", "statuses", "rollups", "capacity"]
    assert all(s.ok for s in steps), [s.line() for s in steps]

    # Jobs: exactly the emulator's ground truth, spanning its whole history (not POLL_BACKFILL_HOURS).
    sim = emu.simulation
    assert Job.objects.count() == len(sim.jobs)
    oldest = Job.objects.order_by("created_at").values_list("created_at", flat=True).first()
    assert oldest is not None and oldest < now - timedelta(days=HISTORY_DAYS) + timedelta(hours=1)
    # Utilization: every minute of every worker from the history's start.
    first_sample = UtilizationSample.objects.order_by("ts").values_list("ts", flat=True).first()
    assert first_sample is not None and first_sample < now - timedelta(days=HISTORY_DAYS) + timedelta(minutes=5)

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
