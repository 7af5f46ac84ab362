"""Polls through the real adapter and SDKs against the HTTPS emulator: PollRuns, watermarks, faults, statuses."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO
from urllib.parse import unquote

import pytest
from django.core.management import CommandError, call_command
from django.db import models

from workers.azure.errors import AzureTransientError
from workers.fleet import polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.status import refresh_statuses
from workers.models import AutomationAccount, HybridWorker, Job, PollRun, StatusChange, UtilizationSample, WorkerGroup
from workers.rules import health
from workers.rules.diagnosis import diagnoses
from workers.rules.pressure import PressureLimits
from workers.rules.signals import Thresholds

pytestmark = pytest.mark.django_db


@pytest.fixture
def emu(make_emulator):
    return make_emulator(seed=11, groups=3, workers=8, history_days=1 / 24, page_size=3, scenarios=False)


def account_for(emu) -> AutomationAccount:
    return add_account_from_connection_file(emu.connection_file)[0]


def poll_all(account: AutomationAccount, emu) -> list[polling.PollOutcome]:
    return polling.poll_account_once(account.pk, now=emu.clock.now())


def snapshot() -> dict[str, list]:
    return {
        "groups": sorted(WorkerGroup.objects.values_list("pk", "azure_id", "removed_at")),
        "workers": sorted(HybridWorker.objects.values_list("pk", "azure_id", "last_seen_at", "last_heartbeat_at")),
        "jobs": sorted(Job.objects.values_list("pk", "job_id", "status", "last_modified_at")),
        "samples": UtilizationSample.objects.count(),
    }


def test_it_ingests_every_group_and_worker_across_pages(emu):
    account = account_for(emu)
    outcomes = poll_all(account, emu)
    assert all(o.ok for o in outcomes), outcomes
    assert WorkerGroup.objects.count() == len(emu.simulation.groups)
    assert HybridWorker.objects.count() == 8


def test_it_records_a_poll_run_per_poll(emu):
    account = account_for(emu)
    poll_all(account, emu)
    kinds = sorted(set(PollRun.objects.filter(ok=True).values_list("kind", flat=True)))
    assert kinds == ["events", "groups", "heartbeat", "jobs", "perf", "workers"]
    run = PollRun.objects.get(kind="jobs")
    assert run.finished_at >= run.started_at and run.rows == Job.objects.count() and run.error == ""


def test_the_same_poll_twice_leaves_the_same_rows(emu):
    account = account_for(emu)
    poll_all(account, emu)
    first = snapshot()
    poll_all(account, emu)
    assert snapshot() == first


def test_it_advances_the_watermarks_to_the_poll_time(emu):
    account = account_for(emu)
    poll_all(account, emu)
    account.refresh_from_db()
    now = emu.clock.now()
    assert (account.jobs_watermark, account.heartbeat_watermark, account.perf_watermark, account.events_watermark) == (now,) * 4


def test_a_later_poll_reads_from_the_watermark_minus_the_overlap(emu, settings):
    settings.POLL_OVERLAP_SECONDS = 600
    account = account_for(emu)
    poll_all(account, emu)
    first_poll = emu.clock.now()
    emu.clock.advance(300)
    polling.poll_jobs(account.pk, now=emu.clock.now())
    filters = [unquote(r["query"]) for r in emu.requests() if r["path"].endswith("/jobs")]
    expected = (first_poll - timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%S")
    assert expected in filters[-1]


def test_new_and_changed_jobs_arrive_with_the_next_poll(emu):
    account = account_for(emu)
    poll_all(account, emu)
    running = set(Job.objects.filter(status__in=["Running", "New", "Activating"]).values_list("job_id", flat=True))
    emu.clock.advance(3600)
    polling.poll_jobs(account.pk, now=emu.clock.now())
    still = set(Job.objects.filter(job_id__in=running, status__in=["Running", "New", "Activating"]).values_list("job_id", flat=True))
    assert running and still < running
    assert Job.objects.filter(created_at__gt=emu.clock.now() - timedelta(minutes=50)).exists()


def test_a_503_storm_records_the_failure_and_leaves_data_untouched(emu):
    account = account_for(emu)
    poll_all(account, emu)
    before = snapshot()
    emu.clock.advance(120)
    emu.inject_fault("503", count=50, route="arm")
    with pytest.raises(AzureTransientError):
        polling.poll_jobs(account.pk, now=emu.clock.now())
    emu.clear_faults()
    run = PollRun.objects.filter(kind="jobs").order_by("-started_at").first()
    assert run.ok is False and "transient" in run.error and run.finished_at is not None
    assert snapshot() == before


def test_a_failed_poll_does_not_advance_the_watermark(emu):
    account = account_for(emu)
    poll_all(account, emu)
    account.refresh_from_db()
    mark = account.jobs_watermark
    emu.clock.advance(120)
    emu.inject_fault("503", count=50, route="arm")
    with pytest.raises(AzureTransientError):
        polling.poll_jobs(account.pk, now=emu.clock.now())
    emu.clear_faults()
    account.refresh_from_db()
    assert account.jobs_watermark == mark


def test_a_permanent_error_is_recorded_and_not_raised(emu):
    account = account_for(emu)
    AutomationAccount.objects.filter(pk=account.pk).update(resource_group="rg-that-does-not-exist")  # a 404
    outcome = polling.poll_groups(account.pk, now=emu.clock.now())
    assert outcome.ok is False and "404" in outcome.error
    run = PollRun.objects.get()
    assert (run.kind, run.ok, run.error) == ("groups", False, outcome.error)
    assert WorkerGroup.objects.count() == 0


def test_a_partial_log_result_is_read_again_in_halves_and_noted(emu):
    account = account_for(emu)
    poll_all(account, emu)
    emu.clock.advance(120)
    emu.inject_fault("partial", count=1, route="logs")
    outcomes = polling.poll_logs(account.pk, now=emu.clock.now())
    emu.clear_faults()
    assert all(o.ok for o in outcomes), outcomes
    account.refresh_from_db()
    for kind in ("heartbeat", "perf", "events"):
        assert getattr(account, f"{kind}_watermark") == emu.clock.now(), kind
    notes = [r.error for r in PollRun.objects.filter(kind__in=["heartbeat", "perf", "events"], started_at=emu.clock.now())]
    assert sum("split in halves after a partial result" in n for n in notes) == 1, notes


def test_a_log_result_still_partial_at_the_smallest_slice_keeps_rows_but_is_not_fresh(emu):
    account = account_for(emu)
    poll_all(account, emu)
    account.refresh_from_db()
    marks = {k: getattr(account, f"{k}_watermark") for k in ("heartbeat", "perf", "events")}
    emu.clock.advance(120)
    emu.inject_fault("partial", count=10_000, route="logs")
    outcomes = polling.poll_logs(account.pk, now=emu.clock.now())
    emu.clear_faults()
    assert outcomes and all(not o.ok and "partial result" in o.error for o in outcomes), outcomes
    account.refresh_from_db()
    for kind, mark in marks.items():
        assert getattr(account, f"{kind}_watermark") == mark, kind
    assert PollRun.objects.filter(kind="perf", ok=False).get().error.startswith("partial result")


def test_an_unreachable_azure_fails_every_poll_of_poll_once(emu):
    account = account_for(emu)
    emu.close()
    with pytest.raises(CommandError, match="poll\\(s\\) failed"):
        call_command("poll", "--once", stdout=StringIO())
    assert PollRun.objects.filter(account=account, ok=True).count() == 0


def test_poll_once_prints_what_it_ingested(emu, time_machine):
    time_machine.move_to(emu.clock.now(), tick=False)
    account_for(emu)
    out = StringIO()
    call_command("poll", "--once", stdout=out)
    text = out.getvalue()
    assert "groups   : 3 rows" in text
    assert "workers  : 8 rows from 3 groups" in text
    assert f"jobs     : {Job.objects.count()} rows" in text
    assert "All polls succeeded." in text
    assert "statuses : 8 workers judged, 8 changes" in text


def test_a_stopped_agent_goes_offline_with_one_status_change(emu):
    account = account_for(emu)
    poll_all(account, emu)
    refresh_statuses(account.pk, now=emu.clock.now())
    victim = HybridWorker.objects.order_by("name").first()
    assert victim.status == "online"
    emu.start_scenario("agent_stopped", victim.name, 60)
    emu.clock.advance(15 * 60)
    poll_all(account, emu)
    refresh_statuses(account.pk, now=emu.clock.now())
    refresh_statuses(account.pk, now=emu.clock.now())
    victim.refresh_from_db()
    assert victim.status == "offline"
    change = StatusChange.objects.get(worker=victim, new_status="offline")
    assert change.old_status == "online"
    assert not StatusChange.objects.exclude(worker=victim).filter(new_status="offline").exists()


def test_polls_record_each_signal_as_spans_and_a_stopped_agent_as_a_gap(emu):
    from workers.models import SignalSource, SignalSpan

    account = account_for(emu)
    for _ in range(5):  # 2 minutes of healthy polling, every 30 s
        poll_all(account, emu)
        emu.clock.advance(30)
    victim = HybridWorker.objects.order_by("name").first()
    for source in (SignalSource.AUTOMATION, SignalSource.HEARTBEAT):
        per_worker = sorted(SignalSpan.objects.filter(source=source).values_list("worker_id", flat=True))
        assert per_worker == sorted(HybridWorker.objects.values_list("pk", flat=True)), source  # one span each
    assert SignalSpan.objects.filter(source=SignalSource.AUTOMATION, end_at__gt=models.F("start_at")).count() == 8
    stopped_at = emu.clock.now()
    emu.start_scenario("agent_stopped", victim.name, 60)
    for _ in range(10):
        emu.clock.advance(60)
        poll_all(account, emu)
    now = emu.clock.now()
    victim_spans = list(SignalSpan.objects.filter(worker=victim).values_list("source", "end_at"))
    assert len(victim_spans) == 2 and all(end <= stopped_at for _source, end in victim_spans)
    others = SignalSpan.objects.exclude(worker=victim).filter(source=SignalSource.AUTOMATION)
    assert others.count() == 7 and all(now - end < timedelta(seconds=90) for end in others.values_list("end_at", flat=True))


def test_blocked_outbound_443_is_late_and_diagnosed(emu):
    account = account_for(emu)
    poll_all(account, emu)
    victim = HybridWorker.objects.order_by("name").first()
    emu.start_scenario("outbound_blocked", victim.name, 60)
    emu.clock.advance(10 * 60)
    poll_all(account, emu)
    now = emu.clock.now()
    refresh_statuses(account.pk, now=now)
    victim.refresh_from_db()
    verdict = health.worker_status(
        now=now, last_seen_at=victim.last_seen_at, last_heartbeat_at=victim.last_heartbeat_at,
        registered_at=victim.registered_at, thresholds=Thresholds.from_settings(),
    )
    assert victim.status == "late" and verdict.stale_signals == ["automation"]
    # From outside, a blocked port 443 looks like a stopped Hybrid Worker service: on a V2 worker the
    # service comes first and the port second; on V1 (no such service) the port is the cause.
    found = diagnoses(verdict=verdict, now=now, pressure=PressureLimits.from_settings(),
                      worker_type=victim.worker_type, os_type=victim.os_type)
    codes = [d.code for d in found]
    if victim.worker_type == "HybridV1":
        assert codes[0] == "outbound_blocked"
    else:
        assert codes[:2] == ["service_stopped", "outbound_blocked"]


def test_a_long_perf_backlog_is_read_in_slices_across_polls(emu, monkeypatch):
    monkeypatch.setattr(polling, "PERF_ROWS_PER_QUERY", 8 * 10)  # 8 workers -> 10-minute slices
    monkeypatch.setattr(polling, "PERF_SLICES_PER_POLL", 2)
    account = account_for(emu)
    polling.poll_groups(account.pk, now=emu.clock.now())
    for group in WorkerGroup.objects.all():
        polling.poll_workers(account.pk, group.pk, now=emu.clock.now())
    now = emu.clock.now()
    outcome = next(o for o in polling.poll_logs(account.pk, now=now) if o.kind == "perf")
    account.refresh_from_db()
    start = now - timedelta(hours=24)
    assert outcome.ok is False and outcome.error.startswith("backlog")
    assert account.perf_watermark == start + timedelta(minutes=20)
    queries = [r for r in emu.requests() if "Perf" in (r.get("kql") or "")]
    assert len(queries) == 2
