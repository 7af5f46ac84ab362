"""Signal spans: the history of each worker's two liveness signals, recorded on every poll.

A worker row keeps only the latest Automation ``lastSeenDateTime`` and the latest Log Analytics
``Heartbeat``. Each poll also hands the observed timestamps to ``record_signal``, which keeps one
``SignalSpan`` per unbroken stretch: an observation within the tolerance of the worker's latest span
extends it, a later one starts a new span. The tolerance (``workers.rules.signals.tolerance``) is the
signal's "late" threshold (the one status is judged with, capped by the group's grace period), so a
gap between two spans on the worker page means exactly "this signal was late".

Set-based, like the rest of ingestion, and cheapest in the steady state (every signal advancing):
per batch of 1,000 workers one ``UPDATE ... FROM (VALUES ...) RETURNING`` extends each worker's
latest span whose end lies within the tolerance before the new observation; that is usually all of
them, and then nothing else runs. For the workers it did not extend (first observation, a gap, the
same value again, a late answer) one SELECT reads their latest span (a correlated ``ORDER BY end_at
DESC LIMIT 1`` per worker on the ``(worker, source, end_at)`` index) and one INSERT adds the new
spans. A late, out-of-order observation (older than the latest span's start: a slow poll finishing
after a newer one) costs one more SELECT for just those workers, and never shrinks, duplicates or
overlaps a span: inside a span it is ignored; otherwise it extends the neighbour it is within the
tolerance of (joining both neighbours if it closes the gap between them) or becomes a span of its
own. The same poll twice writes nothing.

Callers (``inventory.ingest_workers``, ``telemetry.ingest_heartbeats``) hold the transaction and the
worker row locks, taken in primary-key order, and call this after their worker writes; every span
writer of a worker and source therefore runs under that worker's lock, so the read-then-write here
cannot race.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from workers.fleet.locking import qn, update_from_values, values_column_sql
from workers.models import HybridWorker, SignalSpan

BATCH = 1000


@dataclass(frozen=True)
class SpanResult:
    extended: int = 0  # spans whose end (or start, for a late observation) moved
    created: int = 0  # new spans
    merged: int = 0  # spans deleted after being joined into their predecessor (a late observation closed the gap)
    unchanged: int = 0  # observations already covered by a span (e.g. the same poll again)

    def __add__(self, other: SpanResult) -> SpanResult:
        return SpanResult(
            self.extended + other.extended, self.created + other.created, self.merged + other.merged,
            self.unchanged + other.unchanged,
        )


@dataclass
class _Span:
    pk: int
    start: datetime
    end: datetime


def record_signal(
    source: str,
    observations: Mapping[int, datetime | None],
    tolerance: timedelta,
    *,
    not_before: datetime | None = None,
) -> SpanResult:
    """Record one poll's observations of ``source`` (worker pk -> observed timestamp).

    ``None`` timestamps (never reported) record nothing; so do timestamps before ``not_before``
    (past retention: a worker offline for longer still reports its old lastSeen on every poll, and
    a span for it would be pruned and written again each cycle). Per batch of 1,000 workers: one
    UPDATE; then, only for workers it did not extend, one SELECT and at most one INSERT (plus one
    SELECT, and rarely an UPDATE/DELETE, when some observations arrive out of order). Idempotent.
    """
    clean = {
        pk: at for pk, at in observations.items() if at is not None and (not_before is None or at >= not_before)
    }
    pks = sorted(clean)
    result = SpanResult()
    # Joins the caller's transaction (no savepoint: two statements saved per call); alone, its own.
    with transaction.atomic(savepoint=False):
        for start in range(0, len(pks), BATCH):
            batch = pks[start : start + BATCH]
            result += _record_batch(source, {pk: clean[pk] for pk in batch}, tolerance)
    return result


def _latest_spans(source: str, pks: list[int]) -> dict[int, _Span]:
    """The latest span (greatest ``end_at``) of each of these workers for ``source``. One query.

    Per worker, three correlated ``ORDER BY end_at DESC LIMIT 1`` subqueries, each one backward
    step on the ``(worker, source, end_at)`` index: the cost follows the batch, never the number of
    spans stored (a join to the span table lets PostgreSQL choose to scan all of it). Plain SQL: the
    ORM would spend several times the query's own time compiling it, once per group poll."""
    span, worker = qn(SignalSpan._meta.db_table), qn(HybridWorker._meta.db_table)

    def latest(column: str) -> str:
        return (
            f"(SELECT s.{qn(column)} FROM {span} AS s WHERE s.{qn('worker_id')} = w.{qn('id')} "
            f"AND s.{qn('source')} = %s ORDER BY s.{qn('end_at')} DESC LIMIT 1)"
        )

    sql = (
        f"SELECT w.{qn('id')}, {latest('id')}, {latest('start_at')}, {latest('end_at')} "
        f"FROM {worker} AS w WHERE w.{qn('id')} IN ({', '.join(['%s'] * len(pks))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [source, source, source, *pks])
        rows = cursor.fetchall()
    return {
        worker_id: _Span(pk, _as_datetime(start), _as_datetime(end))
        for worker_id, pk, start, end in rows
        if pk is not None
    }


def _as_datetime(value: datetime | str) -> datetime:
    """A timestamp read with plain SQL: PostgreSQL returns an aware datetime; SQLite returns the
    stored naive UTC value (how Django writes it with USE_TZ), parsed or as text."""
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _extend_latest(source: str, observed: dict[int, datetime], tol: timedelta) -> set[int]:
    """The steady state in one statement: move each worker's latest span's end forward to its
    observation when the span ended before it, but no longer than ``tol`` before. Returns the
    workers whose span was extended. A span is the latest when no span of the worker ends after it."""
    table = qn(SignalSpan._meta.db_table)
    worker_col, source_col = qn("worker_id"), qn("source")
    end_col = qn("end_at")
    adapt = connection.ops.adapt_datetimefield_value  # UTC text on SQLite; the datetime on PostgreSQL
    params: list[int | str | datetime | None] = []
    for pk, at in observed.items():
        params += [pk, adapt(at), adapt(at - tol)]
    rows = ", ".join(["(%s, %s, %s)"] * len(observed))
    columns = ", ".join([
        values_column_sql(1, "worker_id", "id", SignalSpan),
        values_column_sql(2, "at", "end_at", SignalSpan),
        values_column_sql(3, "floor", "end_at", SignalSpan),
    ])
    sql = (
        f"UPDATE {table} SET {end_col} = v.{qn('at')} "
        f"FROM (SELECT {columns} FROM (VALUES {rows}) AS vals) AS v "
        f"WHERE {table}.{worker_col} = v.{worker_col} AND {table}.{source_col} = %s "
        f"AND {table}.{end_col} < v.{qn('at')} AND {table}.{end_col} >= v.{qn('floor')} "
        f"AND NOT EXISTS (SELECT 1 FROM {table} AS later WHERE later.{worker_col} = {table}.{worker_col} "
        f"AND later.{source_col} = {table}.{source_col} AND later.{end_col} > {table}.{end_col}) "
        f"RETURNING {table}.{worker_col}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, source])
        return {row[0] for row in cursor.fetchall()}


def _record_batch(source: str, observed: dict[int, datetime], tol: timedelta) -> SpanResult:
    moved = _extend_latest(source, observed, tol)
    observed = {pk: at for pk, at in observed.items() if pk not in moved}
    if not observed:
        return SpanResult(extended=len(moved))
    latest = _latest_spans(source, list(observed))
    ends: dict[int, datetime] = {}  # span pk -> new end_at
    starts: dict[int, datetime] = {}  # span pk -> new start_at (late observations only)
    doomed: list[int] = []  # spans merged into their predecessor (late observations only)
    new: list[SignalSpan] = []
    late: dict[int, datetime] = {}
    unchanged = 0
    for pk, at in observed.items():  # worker pk order
        span = latest.get(pk)
        if span is None:
            new.append(SignalSpan(worker_id=pk, source=source, start_at=at, end_at=at))
        elif at < span.start:
            late[pk] = at
        elif at <= span.end:
            unchanged += 1
        elif at - span.end <= tol:
            ends[span.pk] = at
        else:
            new.append(SignalSpan(worker_id=pk, source=source, start_at=at, end_at=at))
    if late:
        unchanged += _place_late(source, late, tol, ends, starts, doomed, new)
    if ends:
        # keep_newer: an end never moves backwards, even if a caller forgot the worker locks.
        update_from_values({pk: {"end_at": at} for pk, at in ends.items()}, ["end_at"], keep_newer="end_at", model=SignalSpan)
    if starts:
        update_from_values({pk: {"start_at": at} for pk, at in starts.items()}, ["start_at"], model=SignalSpan)
    if doomed:
        SignalSpan.objects.filter(pk__in=doomed).delete()
    if new:
        SignalSpan.objects.bulk_create(new, batch_size=BATCH)
    return SpanResult(
        extended=len(moved) + len(ends) + len(starts), created=len(new), merged=len(doomed), unchanged=unchanged
    )


def _place_late(
    source: str,
    late: dict[int, datetime],
    tol: timedelta,
    ends: dict[int, datetime],
    starts: dict[int, datetime],
    doomed: list[int],
    new: list[SignalSpan],
) -> int:
    """Fit observations older than their worker's latest span into the spans around them, without
    overlap. One query (the spans that could touch any of them). Returns how many were already covered."""
    near: dict[int, list[_Span]] = {pk: [] for pk in late}
    rows = (
        SignalSpan.objects.filter(
            worker_id__in=list(late), source=source,
            end_at__gte=min(late.values()) - tol, start_at__lte=max(late.values()) + tol,
        )
        .order_by("worker_id", "start_at")
        .values_list("pk", "worker_id", "start_at", "end_at")
    )
    for pk, worker_id, start, end in rows:
        near[worker_id].append(_Span(pk, start, end))
    covered = 0
    for worker_id, at in late.items():
        spans = near[worker_id]
        if any(s.start <= at <= s.end for s in spans):
            covered += 1
            continue
        before = [s for s in spans if s.end < at and at - s.end <= tol]
        after = [s for s in spans if s.start > at and s.start - at <= tol]
        prev = before[-1] if before else None
        nxt = after[0] if after else None
        if prev and nxt:
            ends[prev.pk] = nxt.end
            doomed.append(nxt.pk)
        elif prev:
            ends[prev.pk] = at
        elif nxt:
            starts[nxt.pk] = at
        else:
            new.append(SignalSpan(worker_id=worker_id, source=source, start_at=at, end_at=at))
    return covered
