"""The ping poll end to end: the emulator's HybridWorkerPing through the real azure-mgmt-monitor client,
stored as ``last_ping_at`` with a ``PollRun`` of kind ping, and judged by the status refresh: with the
ping, a stopped service is found without re-listing the worker's group."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from tests.alerting.test_alert_emulator import Pipeline
from workers.azure.records import PingRecord
from workers.fleet import polling
from workers.fleet.ping import ingest_pings, poll_pings
from workers.fleet.status import refresh_statuses
from workers.models import HybridWorker, PollKind, PollRun, SignalSpan

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def pipe(make_emulator, mailbox):
    emu = make_emulator(seed=11, groups=3, workers=8, history_days=1 / 24, page_size=50, scenarios=False)
    pipeline = Pipeline(emu)
    pipeline.step(0)
    pipeline.run(minutes=2)
    return pipeline


def test_it_stores_every_workers_latest_ping_and_records_the_poll(pipe):
    now = pipe.emu.clock.now()
    outcome = poll_pings(pipe.account.pk, now=now)
    assert outcome.ok and outcome.rows == 8 and outcome.skipped == 0
    run = PollRun.objects.get(kind=PollKind.PING)
    assert run.ok and run.rows == 8 and run.finished_at is not None and run.scope == ""
    for w in HybridWorker.objects.all():
        assert now - timedelta(minutes=5) <= w.last_ping_at <= now, w.name
    assert SignalSpan.objects.filter(source="ping").count() == 8
    assert poll_pings(pipe.account.pk, now=now).ok  # safe twice
    assert SignalSpan.objects.filter(source="ping").count() == 8


def test_last_ping_never_moves_backwards_and_unknown_names_are_skipped(pipe):
    poll_pings(pipe.account.pk, now=pipe.emu.clock.now())
    w = HybridWorker.objects.order_by("name").first()
    before = w.last_ping_at
    older = PingRecord(worker=w.name.upper(), last_ping_at=before - timedelta(minutes=30), pings=2)
    result = ingest_pings(pipe.account, [older, PingRecord(worker="not-ours", last_ping_at=before, pings=2)])
    assert result.skipped == 1
    w.refresh_from_db()
    assert w.last_ping_at == before
    newer = PingRecord(worker=f"{w.name}.corp.contoso.com", last_ping_at=before + timedelta(minutes=1), pings=1)
    assert ingest_pings(pipe.account, [newer]).rows == 1
    w.refresh_from_db()
    assert w.last_ping_at == before + timedelta(minutes=1)


def test_the_ping_finds_a_stopped_service_and_a_dead_machine_while_the_listing_runs_at_inventory_pace(pipe):
    emu = pipe.emu
    dead = pipe.victim()
    stopped = HybridWorker.objects.filter(worker_type="HybridV2", status="online").exclude(pk=dead.pk).order_by("name").first()
    poll_pings(pipe.account.pk, now=emu.clock.now())
    emu.start_scenario("agent_stopped", dead.name, 30)
    emu.start_scenario("service_stopped", stopped.name, 30)
    # No worker listing from now on (inventory pace): the ping and log polls, and the status refresh.
    for _ in range(12):
        emu.clock.advance(60)
        now = emu.clock.now()
        assert poll_pings(pipe.account.pk, now=now).ok
        polling.poll_logs(pipe.account.pk, now=now)
        refresh_statuses(pipe.account.pk, now=now)
    dead.refresh_from_db()
    stopped.refresh_from_db()
    assert dead.status == "offline", dead.status_reason
    assert "HybridWorkerPing" in dead.status_reason
    # The agent still sends heartbeats: the service is unheard on both of its signals, the worker late.
    assert stopped.status == "late", stopped.status_reason
    assert "Log Analytics heartbeat fresh" in stopped.status_reason and "HybridWorkerPing" in stopped.status_reason
    others = HybridWorker.objects.exclude(pk__in=[dead.pk, stopped.pk]).exclude(worker_type="HybridV1")
    assert others.exists() and set(others.values_list("status", flat=True)) == {"online"}


def test_the_beat_polls_pings_every_poll_ping_seconds():
    entry = settings.CELERY_BEAT_SCHEDULE["poll-ping"]
    assert entry["task"] == "workers.fleet.tasks.poll_all_pings"
    assert entry["schedule"] == float(settings.POLL_PING_SECONDS) == entry["options"]["expires"]
