"""Signal spans: each worker's Automation lastSeen / Log Analytics Heartbeat history, recorded per poll.

record_signal on its own (extend, gap, idempotence, late observations, None, query bounds), through
ingest_workers / ingest_heartbeats end to end, retention, and worker_detail's clipped spans.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.fleet.test_ingest import group_rec, hb, worker_rec
from workers.fleet import selectors
from workers.fleet.inventory import ingest_groups, ingest_workers
from workers.fleet.rollups import prune_raw
from workers.fleet.signal_spans import SpanResult, record_signal
from workers.fleet.telemetry import ingest_heartbeats
from workers.models import AutomationAccount, HybridWorker, SignalSource, SignalSpan, WorkerGroup
from workers.rules.signals import tolerance

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOL = timedelta(seconds=90)
A = SignalSource.AUTOMATION
H = SignalSource.HEARTBEAT

pytestmark = pytest.mark.django_db


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.fixture
def account() -> AutomationAccount:
    return AutomationAccount.objects.create(name="a", subscription_id="s", resource_group="rg", automation_account="a")


@pytest.fixture
def group(account) -> WorkerGroup:
    return WorkerGroup.objects.create(account=account, azure_id="/g", name="g")


def make_workers(group: WorkerGroup, n: int) -> list[int]:
    rows = HybridWorker.objects.bulk_create(
        [HybridWorker(group=group, azure_id=f"/g/w{i}", worker_id=f"w{i}", name=f"w{i}") for i in range(n)], batch_size=2000
    )
    return sorted(w.pk for w in rows)


@pytest.fixture
def wk(group) -> int:
    return make_workers(group, 1)[0]


def spans(pk: int | None = None, source: str = A) -> list[tuple[datetime, datetime]]:
    qs = SignalSpan.objects.filter(source=source)
    if pk is not None:
        qs = qs.filter(worker_id=pk)
    return list(qs.order_by("worker_id", "start_at").values_list("start_at", "end_at"))


# --- record_signal


def test_a_first_observation_is_a_span_of_zero_length(wk):
    assert record_signal(A, {wk: at(0)}, TOL) == SpanResult(created=1)
    assert spans(wk) == [(at(0), at(0))]


def test_observations_within_the_tolerance_extend_one_span(wk):
    for s in (0, 30, 60, 150):  # the last is exactly 90 s after the one before: still within
        record_signal(A, {wk: at(s)}, TOL)
    assert spans(wk) == [(at(0), at(150))]


def test_sub_second_timestamps_extend_and_repeat_exactly(wk):
    record_signal(A, {wk: at(0)}, TOL)
    assert record_signal(A, {wk: at(0.25)}, TOL) == SpanResult(extended=1)
    assert record_signal(A, {wk: at(0.25)}, TOL) == SpanResult(unchanged=1)
    assert record_signal(A, {wk: at(90.25)}, TOL) == SpanResult(extended=1)
    assert record_signal(A, {wk: at(180.5)}, TOL) == SpanResult(created=1)  # 90.25 s after the end
    assert spans(wk) == [(at(0), at(90.25)), (at(180.5), at(180.5))]


def test_a_gap_longer_than_the_tolerance_starts_a_new_span(wk):
    record_signal(A, {wk: at(0)}, TOL)
    record_signal(A, {wk: at(30)}, TOL)
    assert record_signal(A, {wk: at(121)}, TOL) == SpanResult(created=1)  # 91 s after the end
    record_signal(A, {wk: at(150)}, TOL)
    assert spans(wk) == [(at(0), at(30)), (at(121), at(150))]


def test_the_same_poll_twice_changes_nothing(group):
    pks = make_workers(group, 3)
    record_signal(A, {pks[0]: at(0), pks[1]: at(0), pks[2]: at(0)}, TOL)
    poll = {pks[0]: at(30), pks[1]: at(500), pks[2]: at(0)}
    record_signal(A, poll, TOL)
    before = list(SignalSpan.objects.order_by("pk").values_list("pk", "worker_id", "start_at", "end_at"))
    with CaptureQueriesContext(connection) as queries:
        assert record_signal(A, poll, TOL) == SpanResult(unchanged=3)
    assert list(SignalSpan.objects.order_by("pk").values_list("pk", "worker_id", "start_at", "end_at")) == before
    assert len(queries) == 2  # an UPDATE that matches nothing, the read; nothing written


def test_an_older_observation_inside_the_span_neither_shrinks_nor_duplicates(wk):
    record_signal(A, {wk: at(0)}, TOL)
    record_signal(A, {wk: at(60)}, TOL)
    assert record_signal(A, {wk: at(30)}, TOL) == SpanResult(unchanged=1)
    assert spans(wk) == [(at(0), at(60))]


def test_a_late_observation_inside_an_earlier_span_is_ignored(wk):
    record_signal(A, {wk: at(0)}, TOL)
    record_signal(A, {wk: at(60)}, TOL)
    record_signal(A, {wk: at(600)}, TOL)
    assert record_signal(A, {wk: at(20)}, TOL) == SpanResult(unchanged=1)
    assert spans(wk) == [(at(0), at(60)), (at(600), at(600))]


def test_a_late_observation_far_from_every_span_becomes_its_own_span(wk):
    record_signal(A, {wk: at(0)}, TOL)
    record_signal(A, {wk: at(1000)}, TOL)
    assert record_signal(A, {wk: at(500)}, TOL) == SpanResult(created=1)
    assert record_signal(A, {wk: at(-500)}, TOL) == SpanResult(created=1)  # before the first span
    assert spans(wk) == [(at(-500), at(-500)), (at(0), at(0)), (at(500), at(500)), (at(1000), at(1000))]


def test_a_late_observation_near_a_span_extends_it_without_overlap(wk):
    record_signal(A, {wk: at(0)}, TOL)
    record_signal(A, {wk: at(1000)}, TOL)
    assert record_signal(A, {wk: at(60)}, TOL) == SpanResult(extended=1)  # joins the earlier span
    assert record_signal(A, {wk: at(950)}, TOL) == SpanResult(extended=1)  # pulls the later one back
    assert spans(wk) == [(at(0), at(60)), (at(950), at(1000))]


def test_a_late_observation_that_closes_a_gap_joins_both_spans(wk):
    record_signal(A, {wk: at(0)}, TOL)
    record_signal(A, {wk: at(150)}, TOL)
    record_signal(A, {wk: at(160)}, TOL)
    assert spans(wk) == [(at(0), at(0)), (at(150), at(160))]
    assert record_signal(A, {wk: at(75)}, TOL) == SpanResult(extended=1, merged=1)
    assert spans(wk) == [(at(0), at(160))]
    assert record_signal(A, {wk: at(75)}, TOL) == SpanResult(unchanged=1)


def test_none_and_observations_past_retention_record_nothing(group):
    pks = make_workers(group, 2)
    result = record_signal(A, {pks[0]: None, pks[1]: NOW - timedelta(days=40)}, TOL, not_before=NOW - timedelta(days=31))
    assert result == SpanResult()
    assert SignalSpan.objects.count() == 0


def test_sources_are_recorded_apart(wk):
    record_signal(A, {wk: at(0)}, TOL)
    record_signal(H, {wk: at(500)}, TOL)
    assert spans(wk, A) == [(at(0), at(0))]
    assert spans(wk, H) == [(at(500), at(500))]


def insert_statements(rows: int) -> int:
    """How many INSERTs ``bulk_create`` needs for ``rows`` spans: one on PostgreSQL; Django's SQLite
    backend caps a statement at 999 parameters (249 spans of 4 columns)."""
    per = min(rows, connection.ops.bulk_batch_size(["worker", "source", "start_at", "end_at"], list(range(rows))))
    return math.ceil(rows / per)


def test_many_workers_cost_a_few_queries_per_batch_of_1000(group):
    pks = make_workers(group, 2500)
    with CaptureQueriesContext(connection) as first:
        assert record_signal(A, {pk: at(0) for pk in pks}, TOL).created == 2500
    # Half extend, half start a new span after a gap: a read, an UPDATE and an INSERT per batch.
    poll = {pk: at(30) if i % 2 else at(600) for i, pk in enumerate(pks)}
    with CaptureQueriesContext(connection) as second:
        assert record_signal(A, poll, TOL) == SpanResult(extended=1250, created=1250)
    with CaptureQueriesContext(connection) as third:
        assert record_signal(A, poll, TOL) == SpanResult(unchanged=2500)
    # The steady state: every signal advanced within the tolerance, one UPDATE per batch and nothing else.
    with CaptureQueriesContext(connection) as steady:
        assert record_signal(A, {pk: at(60) if i % 2 else at(630) for i, pk in enumerate(pks)}, TOL) == SpanResult(extended=2500)
    # 3 batches of 1,000 workers, each: the UPDATE, then for the workers it did not extend one read
    # and the INSERT(s); never a query per worker.
    assert len(first) == 3 + 3 + 2 * insert_statements(1000) + insert_statements(500)
    assert len(second) == 3 + 3 + 2 * insert_statements(500) + insert_statements(250)
    assert len(third) == 3 + 3
    assert len(steady) == 3
    assert SignalSpan.objects.count() == 2500 + 1250
    assert spans(pks[1]) == [(at(0), at(60))]
    assert spans(pks[0]) == [(at(0), at(0)), (at(600), at(630))]


def test_the_tolerance_is_the_late_threshold_capped_by_the_group_grace(settings):
    settings.LASTSEEN_LATE_SECONDS, settings.LASTSEEN_OFFLINE_SECONDS = 90, 180
    settings.HEARTBEAT_LATE_SECONDS, settings.HEARTBEAT_OFFLINE_SECONDS = 240, 300
    assert tolerance(A) == timedelta(seconds=90)
    assert tolerance(H) == timedelta(seconds=240)
    assert tolerance(H, 120) == timedelta(seconds=120)
    assert tolerance(A, 600) == timedelta(seconds=90)


# --- through ingestion


def test_ingest_workers_records_each_listed_last_seen(account):
    ingest_groups(account, [group_rec("g1")], now=NOW)
    g1 = WorkerGroup.objects.get(name="g1")
    for s in (0, 30, 60):
        ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=at(s)), worker_rec("g1", "never", seen=None)], now=at(s + 5))
    ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=at(60)), worker_rec("g1", "never", seen=None)], now=at(95))
    ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=at(400))], now=at(405))
    w = HybridWorker.objects.get(name="hrw-01")
    assert spans(w.pk) == [(at(0), at(60)), (at(400), at(400))]
    assert not SignalSpan.objects.filter(worker__name="never").exists()


def test_ingest_workers_records_only_a_last_seen_that_changed(account):
    ingest_groups(account, [group_rec("g1")], now=NOW)
    g1 = WorkerGroup.objects.get(name="g1")
    ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=at(0)), worker_rec("g1", "hrw-02", seen=at(0))], now=NOW)
    listing = [worker_rec("g1", "hrw-01", seen=at(0)), worker_rec("g1", "hrw-02", seen=at(30))]
    with CaptureQueriesContext(connection) as queries:
        ingest_workers(g1, listing, now=at(35))
    assert sum("signalspan" in q["sql"] for q in queries) == 1  # one UPDATE, for hrw-02 only
    assert spans() == [(at(0), at(0)), (at(0), at(30))]
    with CaptureQueriesContext(connection) as queries:
        ingest_workers(g1, listing, now=at(40))  # nothing changed: no span statement at all
    assert not any("signalspan" in q["sql"] for q in queries)


def test_the_migration_seeds_a_span_for_every_stored_signal(group):
    import importlib

    from django.apps import apps

    pks = make_workers(group, 3)
    HybridWorker.objects.filter(pk=pks[0]).update(last_seen_at=at(0), last_heartbeat_at=at(-30))
    HybridWorker.objects.filter(pk=pks[1]).update(last_seen_at=at(5))
    importlib.import_module("workers.migrations.0004_signalspan").seed_spans(apps, None)
    assert sorted(SignalSpan.objects.values_list("worker_id", "source", "start_at", "end_at")) == [
        (pks[0], "automation", at(0), at(0)), (pks[0], "heartbeat", at(-30), at(-30)), (pks[1], "automation", at(5), at(5)),
    ]


def test_ingest_workers_uses_the_groups_grace_as_the_tolerance(account, settings):
    settings.LASTSEEN_LATE_SECONDS = 90
    ingest_groups(account, [group_rec("g1")], now=NOW)
    g1 = WorkerGroup.objects.get(name="g1")
    WorkerGroup.objects.filter(pk=g1.pk).update(grace_seconds=45)
    g1.refresh_from_db()
    ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=at(0))], now=NOW)
    ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=at(60))], now=NOW)
    assert len(spans()) == 2


def test_ingest_workers_skips_a_last_seen_past_retention(account, settings):
    settings.UTILIZATION_RETENTION_DAYS = 31
    ingest_groups(account, [group_rec("g1")], now=NOW)
    g1 = WorkerGroup.objects.get(name="g1")
    ingest_workers(g1, [worker_rec("g1", "gone-long-ago", seen=NOW - timedelta(days=32))], now=NOW)
    assert SignalSpan.objects.count() == 0


def test_ingest_heartbeats_records_spans_and_ignores_unmatched_computers(account):
    ingest_groups(account, [group_rec("g1")], now=NOW)
    g1 = WorkerGroup.objects.get(name="g1")
    ingest_workers(g1, [worker_rec("g1", "hrw-01"), worker_rec("g1", "hrw-02")], now=NOW)
    for s in (0, 60, 120):
        ingest_heartbeats(account, [hb("hrw-01", at(s)), hb("stranger", at(s))])
    ingest_heartbeats(account, [hb("hrw-01", at(120))])  # the same poll again
    ingest_heartbeats(account, [hb("hrw-01", at(60))])  # a late, older answer
    ingest_heartbeats(account, [hb("hrw-01", at(1000)), hb("hrw-02", at(1000))])
    one, two = HybridWorker.objects.order_by("name")
    assert spans(one.pk, H) == [(at(0), at(120)), (at(1000), at(1000))]
    assert spans(two.pk, H) == [(at(1000), at(1000))]
    assert one.last_heartbeat_at == at(1000)


def test_ingest_heartbeats_writes_spans_in_a_bounded_number_of_queries(account):
    ingest_groups(account, [group_rec("g1")], now=NOW)
    g1 = WorkerGroup.objects.get(name="g1")
    ingest_workers(g1, [worker_rec("g1", f"hrw-{i:04}") for i in range(2500)], now=NOW)
    beats = [hb(f"hrw-{i:04}", at(30)) for i in range(2500)]
    with CaptureQueriesContext(connection) as queries:
        ingest_heartbeats(account, beats)
    # computer index, grace overrides, then per 2,000-worker lock batch: savepoint, lock (PostgreSQL
    # only), UPDATE, release, and per 1,000-worker span batch the span UPDATE, a read (first
    # heartbeats: no span to extend) and the INSERT(s).
    locks = 2 if connection.vendor == "postgresql" else 0
    assert len(queries) == 2 + 2 * 3 + locks + 3 + 3 + 2 * insert_statements(1000) + insert_statements(500)
    assert SignalSpan.objects.filter(source=H).count() == 2500
    with CaptureQueriesContext(connection) as steady:
        ingest_heartbeats(account, [hb(f"hrw-{i:04}", at(90)) for i in range(2500)])
    assert len(steady) == 2 + 2 * 3 + locks + 3  # the spans: one UPDATE per 1,000 workers
    assert set(SignalSpan.objects.filter(source=H).values_list("start_at", "end_at")) == {(at(30), at(90))}


# --- retention and the worker page's selector


def test_pruning_deletes_only_spans_that_ended_before_the_retention(wk, settings):
    settings.UTILIZATION_RETENTION_DAYS = 7
    old = SignalSpan.objects.create(worker_id=wk, source=A, start_at=NOW - timedelta(days=9), end_at=NOW - timedelta(days=7, seconds=1))
    straddling = SignalSpan.objects.create(worker_id=wk, source=A, start_at=NOW - timedelta(days=8), end_at=NOW - timedelta(days=6))
    recent = SignalSpan.objects.create(worker_id=wk, source=H, start_at=NOW - timedelta(hours=1), end_at=NOW)
    result = prune_raw(now=NOW)
    assert result.signal_spans == 1
    assert set(SignalSpan.objects.values_list("pk", flat=True)) == {straddling.pk, recent.pk}
    assert not SignalSpan.objects.filter(pk=old.pk).exists()
    assert prune_raw(now=NOW).signal_spans == 0


def test_worker_detail_returns_the_spans_of_the_window_clipped(wk):
    since = NOW - timedelta(hours=24)
    SignalSpan.objects.bulk_create([
        SignalSpan(worker_id=wk, source=A, start_at=since - timedelta(hours=5), end_at=since - timedelta(hours=1)),  # before
        SignalSpan(worker_id=wk, source=A, start_at=since - timedelta(hours=1), end_at=since + timedelta(hours=2)),  # straddles
        SignalSpan(worker_id=wk, source=A, start_at=NOW - timedelta(hours=1), end_at=NOW + timedelta(minutes=5)),  # clock skew
        SignalSpan(worker_id=wk, source=H, start_at=NOW - timedelta(minutes=10), end_at=NOW - timedelta(minutes=10)),
    ])
    detail = selectors.worker_detail(worker_id=wk, now=NOW)
    assert detail.spans == {
        "automation": [(since, since + timedelta(hours=2)), (NOW - timedelta(hours=1), NOW)],
        "heartbeat": [(NOW - timedelta(minutes=10), NOW - timedelta(minutes=10))],
    }


def test_worker_detail_has_empty_lanes_without_spans(wk):
    assert selectors.worker_detail(worker_id=wk, now=NOW).spans == {"automation": [], "heartbeat": []}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_listings_and_heartbeats_leave_one_span_per_worker_and_source():
    import threading

    from tests.fixtures.concurrency import run_in_threads

    account = AutomationAccount.objects.create(name="a", subscription_id="s", resource_group="rg", automation_account="a")
    ingest_groups(account, [group_rec("g1")], now=NOW)
    group = WorkerGroup.objects.get()
    ingest_workers(group, [worker_rec("g1", f"hrw-{i:03}", seen=None) for i in range(200)], now=NOW)
    first = [worker_rec("g1", f"hrw-{i:03}", seen=at(0)) for i in range(200)]
    later = [worker_rec("g1", f"hrw-{i:03}", seen=at(30)) for i in range(200)]
    jobs = [
        lambda: ingest_workers(group, first, now=NOW),
        lambda: ingest_workers(group, list(reversed(later)), now=NOW),
        lambda: ingest_workers(group, later, now=NOW),
        lambda: ingest_heartbeats(account, [hb(f"hrw-{i:03}", at(0)) for i in reversed(range(200))]),
    ]
    lock = threading.Lock()

    def one_job() -> None:
        with lock:
            job = jobs.pop()
        job()

    run_in_threads(one_job, n=len(jobs))
    # Whatever the order (at(0) may arrive after at(30)): one span per worker, [at(0), at(30)].
    assert SignalSpan.objects.filter(source=A).count() == 200
    assert set(SignalSpan.objects.filter(source=A).values_list("start_at", "end_at")) == {(at(0), at(30))}
    assert SignalSpan.objects.filter(source=H).count() == 200
