"""Polls: read one slice of Azure through the adapter, ingest it, advance the watermark, record a PollRun.

Each poll reads from its stored watermark minus ``POLL_OVERLAP_SECONDS`` (late data arrives for
minutes) up to ``now``; the first poll of an account, or one after a long gap, reads at most
``POLL_BACKFILL_HOURS``. Ingestion is idempotent, so re-reading the overlap duplicates nothing, and
the watermark moves only after the rows are committed, so a crash or a failure loses nothing.

Every poll writes one ``PollRun`` (kind, scope, times, rows, ok, error), which is where the pages
get data freshness. The run is opened (not ok, not finished) when the poll starts and completed when
it ends; only finished runs count as evidence (``workers.fleet.selectors.poll_evidence``), and a run
left open by a process that died is closed as failed by ``workers.fleet.poll_sweep``. A failed poll
records why and never marks data fresh: nothing is ingested and the watermark stays put.
``AzureTransientError`` (including a truncated or garbled body) propagates after it is recorded (the
Celery task retries it); ``AzureError`` is recorded and returned (retrying will not help). Log Analytics
queries name only our machines, and a partial result is re-read in halves (``workers.fleet.log_reading``);
one that stays partial at the smallest slice ingests its rows but counts as a failure (ok=False,
watermark unchanged), so the next poll reads that window again.

Called by ``workers.fleet.tasks`` (one task per poll) and ``manage.py poll --once``.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from workers.azure.connection import ConnectionSettings, connection_from_account
from workers.azure.errors import AzureError, AzureTransientError, ThrottleDeferred
from workers.fleet.ingest import IngestResult
from workers.fleet.inventory import ingest_groups, ingest_workers
from workers.fleet.job_reading import read_exceptions, read_jobs
from workers.fleet.jobs import ingest_jobs
from workers.fleet.log_reading import fleet_machines, read_logs
from workers.fleet.selectors.poll_evidence import stale_after_seconds
from workers.fleet.telemetry import ingest_agent_events, ingest_heartbeats, ingest_utilization
from workers.models import AutomationAccount, HybridWorker, PollKind, PollRun, WorkerGroup

if TYPE_CHECKING:  # the adapter imports the Azure SDK; load it only when a poll runs
    from workers.azure.client import AzureClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollOutcome:
    kind: str
    scope: str
    ok: bool
    rows: int
    skipped: int = 0
    error: str = ""


@dataclass(frozen=True)
class _Work:
    rows: int
    skipped: int = 0
    incomplete: str | None = None  # why the data is not complete (e.g. a partial Log Analytics result)
    note: str = ""  # a successful poll's remark (e.g. the jobs filter the service refused), kept in PollRun.error


# --- Azure clients --------------------------------------------------------------------------------

_clients: dict[ConnectionSettings, AzureClient] = {}
_clients_lock = threading.Lock()
_MAX_CLIENTS = 16


def azure_client(account: AutomationAccount) -> AzureClient:
    """One adapter client per connection, reused across polls in this process.

    Reuse keeps the credential's token cache and the HTTP connection pool, so a Celery worker
    does not fetch a new Entra token for every poll. Keyed by the full connection settings, so an
    edited account gets a fresh client.
    """
    from workers.azure.client import AzureClient

    conn = connection_from_account(account)
    with _clients_lock:
        client = _clients.get(conn)
        if client is None:
            if len(_clients) >= _MAX_CLIENTS:
                _close_clients_locked()
            client = _clients[conn] = AzureClient(conn)
        return client


def close_clients() -> None:
    """Close every cached client (tests, shutdown)."""
    with _clients_lock:
        _close_clients_locked()


def _close_clients_locked() -> None:
    for client in _clients.values():
        try:
            client.close()
        except Exception:  # closing is best effort
            log.debug("closing an Azure client failed", exc_info=True)
    _clients.clear()


# --- windows and watermarks ------------------------------------------------------------------------


def poll_window_start(watermark: datetime | None, *, now: datetime, floor: datetime | None = None) -> datetime:
    """Where a poll starts reading: watermark minus the overlap, but never before the backfill limit.

    ``floor`` replaces that limit (``POLL_BACKFILL_HOURS`` back) for an explicit history backfill
    (``workers.fleet.backfill``), which reads further back than a routine poll may.
    """
    floor = floor if floor is not None else now - timedelta(hours=settings.POLL_BACKFILL_HOURS)
    if watermark is None:
        return floor
    return max(floor, watermark - timedelta(seconds=settings.POLL_OVERLAP_SECONDS))


def _advance(account_id: int, field: str, now: datetime) -> None:
    """Move a watermark forward to ``now`` (never backwards, even if an older poll finishes last)."""
    AutomationAccount.objects.filter(Q(pk=account_id) & (Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": now}))).update(
        **{field: now}
    )


def _record(account: AutomationAccount, kind: str, scope: str, now: datetime, work: Callable[[], _Work]) -> PollOutcome:
    """Run one poll and write its PollRun, whatever happens."""
    run = PollRun.objects.create(account=account, kind=kind, scope=scope[:260], started_at=now)
    began = time.monotonic()

    def finish(*, ok: bool, rows: int, error: str) -> None:
        elapsed = time.monotonic() - began
        PollRun.objects.filter(pk=run.pk).update(
            finished_at=now + timedelta(seconds=elapsed),
            duration_ms=int(elapsed * 1000),
            rows=rows,
            ok=ok,
            error=error,
        )

    try:
        result = work()
    except ThrottleDeferred as exc:
        # Not an outage: nothing was asked of Azure past the budget. The run never happened.
        PollRun.objects.filter(pk=run.pk).delete()
        log.info("poll %s %s of %s deferred: %s", kind, scope, account, exc)
        raise
    except AzureTransientError as exc:
        finish(ok=False, rows=0, error=f"transient: {exc}")
        log.warning("poll %s %s of %s failed (will retry): %s", kind, scope, account, exc)
        raise
    except AzureError as exc:
        finish(ok=False, rows=0, error=str(exc))
        log.error("poll %s %s of %s failed: %s", kind, scope, account, exc)
        return PollOutcome(kind, scope, False, 0, error=str(exc))
    except Exception as exc:
        finish(ok=False, rows=0, error=f"internal error: {type(exc).__name__}: {exc}")
        raise
    error = result.incomplete or ""
    finish(ok=not error, rows=result.rows, error=error or (f"note: {result.note}" if result.note else ""))
    return PollOutcome(kind, scope, not error, result.rows, result.skipped, error)


def _account(account_id: int) -> AutomationAccount:
    return AutomationAccount.objects.get(pk=account_id)


# --- the polls ---------------------------------------------------------------------------------


def poll_groups(account_id: int, *, now: datetime | None = None) -> PollOutcome:
    """List the account's worker groups and ingest them (removed ones are marked). Safe to repeat."""
    now = now or timezone.now()
    account = _account(account_id)

    def work() -> _Work:
        records = azure_client(account).list_groups()
        result = ingest_groups(account, records, now=now)
        return _Work(result.rows, result.skipped)

    return _record(account, PollKind.GROUPS, "", now, work)


def groups_to_poll(account_id: int, *, now: datetime | None = None) -> list[int]:
    """The account's live groups in the order their worker polls are sent: least recently polled
    first (never polled, or not within the stale window, first of all), then by name.

    Each fan-out's tasks expire after one interval, so when the Celery workers cannot poll every
    group within it (too few workers for the fleet) the tail of the queue is dropped. A fixed order
    would drop the same groups every cycle and they would never be polled; this order puts them at
    the head of the next cycle, so every group is still polled, less often, and the overdue ones
    show as such meanwhile. Two queries (the groups; the window's worker polls on ``pollrun_latest``).
    """
    now = now or timezone.now()
    since = now - timedelta(seconds=stale_after_seconds(PollKind.WORKERS))
    last = dict(
        PollRun.objects.filter(account_id=account_id, kind=PollKind.WORKERS, started_at__gte=since)
        .values_list("scope")
        .annotate(last=Max("started_at"))
        .order_by()
    )
    groups = WorkerGroup.objects.filter(account_id=account_id, removed_at__isnull=True).values_list("pk", "name").order_by("name", "pk")
    never = now - timedelta(days=36500)
    return [pk for pk, name in sorted(groups, key=lambda g: last.get(g[1]) or never)]  # stable: by name within a tie


# The share of an interval over which a big fan-out is spread (the rest is slack for slow polls), and
# the fan-out small enough to send at once (a tenth of ARM's burst of 250 reads: harmless).
FANOUT_SPREAD = 0.8
FANOUT_BURST_OK = 25


def fanout_countdowns(count: int, interval_seconds: float) -> list[float]:
    """Start offsets (seconds) for ``count`` fanned-out polls: all at once up to ``FANOUT_BURST_OK``,
    else evenly over ``FANOUT_SPREAD`` of the interval, the first at once. 500 groups every 30 s
    become ~21 polls per second instead of a burst of 500 (ARM refills 25 read tokens per second
    per subscription and principal)."""
    if count <= FANOUT_BURST_OK:
        return [0.0] * max(0, count)
    step = interval_seconds * FANOUT_SPREAD / count
    return [round(i * step, 3) for i in range(count)]


def poll_workers(account_id: int, group_id: int, *, now: datetime | None = None) -> PollOutcome:
    """List one group's workers and ingest them. Safe to repeat: the listing is upserted by ARM id."""
    now = now or timezone.now()
    account = _account(account_id)
    group = WorkerGroup.objects.get(pk=group_id, account=account)

    def work() -> _Work:
        records = azure_client(account).list_workers(group.name)
        result = ingest_workers(group, records, now=now)
        return _Work(result.rows, result.skipped)

    return _record(account, PollKind.WORKERS, group.name, now, work)


def poll_jobs(account_id: int, *, now: datetime | None = None, floor: datetime | None = None) -> PollOutcome:
    """Jobs created or changed since the jobs watermark (minus the overlap), then the exceptions of
    the newly failed ones (``workers.fleet.job_reading``: whatever filters the service accepts). Safe
    to repeat."""
    now = now or timezone.now()
    account = _account(account_id)
    since = poll_window_start(account.jobs_watermark, now=now, floor=floor)

    def work() -> _Work:
        client = azure_client(account)
        read = read_jobs(client, account, since=since, now=now)
        with transaction.atomic():
            result = ingest_jobs(account, read.records, now=now)
            _advance(account.pk, "jobs_watermark", now)
        exceptions = read_exceptions(client, account, now=now)
        if exceptions.records:
            ingest_jobs(account, exceptions.records, now=now)
        return _Work(result.rows, result.skipped, note="; ".join(read.notes + exceptions.notes))

    return _record(account, PollKind.JOBS, "", now, work)


# Log Analytics answers at most 500,000 rows per query. Perf returns one row per computer per
# minute, so a long window over a big fleet is read in slices of about this many rows, at most
# PERF_SLICES_PER_POLL per poll; the watermark advances slice by slice, and a poll that could not
# catch up (a first backfill of a big fleet) continues where it stopped on the next run.
PERF_ROWS_PER_QUERY = 400_000
PERF_SLICES_PER_POLL = 3


def perf_slice(worker_count: int) -> timedelta:
    """The longest Perf window that stays under PERF_ROWS_PER_QUERY for this many workers."""
    return timedelta(minutes=max(1, PERF_ROWS_PER_QUERY // max(1, worker_count)))


def _logs_work(
    account: AutomationAccount,
    method: str,
    ingest_fn: Callable[[AutomationAccount, tuple], IngestResult],
    watermark_field: str,
    now: datetime,
    *,
    slice_length: timedelta | None = None,
    max_slices: int = 1,
    floor: datetime | None = None,
) -> Callable[[], _Work]:
    start = poll_window_start(getattr(account, watermark_field), now=now, floor=floor)

    def work() -> _Work:
        rows = skipped = 0
        begin, machines, notes = start, fleet_machines(account), []  # our machines only, in batches
        for _ in range(max_slices):
            end = now if slice_length is None else min(now, begin + slice_length)
            answer = read_logs(azure_client(account), method, machines, start=begin, end=end)  # splits partial slices
            notes += [answer.note()] if answer.splits else []
            with transaction.atomic():
                result = ingest_fn(account, answer.rows)
                if answer.partial_error is None:
                    _advance(account.pk, watermark_field, end)
            rows += result.rows
            skipped += result.skipped
            if answer.partial_error is not None:
                return _Work(rows, skipped, f"partial result: {answer.partial_error}")
            if end >= now:
                return _Work(rows, skipped, note="; ".join(notes))
            begin = end
        return _Work(rows, skipped, f"backlog: read up to {begin.isoformat()}; the next poll continues from there")

    return work


_LOG_POLLS = (
    (PollKind.HEARTBEAT, "latest_heartbeats", ingest_heartbeats, "heartbeat_watermark"),
    (PollKind.PERF, "utilization", ingest_utilization, "perf_watermark"),
    (PollKind.EVENTS, "agent_events", ingest_agent_events, "events_watermark"),
)
LOG_POLL_KINDS = tuple(kind for kind, *_ in _LOG_POLLS)


def poll_logs(account_id: int, *, now: datetime | None = None, floor: datetime | None = None,
              kinds: Collection[str] | None = None) -> list[PollOutcome]:
    """Heartbeats, CPU/memory and event 4502 from Log Analytics (or only ``kinds`` of them), each with
    its own watermark/PollRun.

    One failing query does not stop the others; if any failed transiently, the first such error is
    raised after all three ran (and were recorded), so the task retries. An account without a
    workspace has nothing to poll here.
    """
    now = now or timezone.now()
    account = _account(account_id)
    if not account.workspace_id:
        return []
    outcomes: list[PollOutcome] = []
    transient: AzureTransientError | None = None
    workers = HybridWorker.objects.filter(group__account=account, removed_at__isnull=True).count()
    for kind, method, ingest_fn, field in _LOG_POLLS:
        if kinds is not None and kind not in kinds:
            continue
        # Only the Perf poll is sliced; the others read their whole window (the _logs_work defaults).
        sliced = kind == PollKind.PERF
        slice_length = perf_slice(workers) if sliced else None
        max_slices = PERF_SLICES_PER_POLL if sliced else 1
        try:
            work = _logs_work(account, method, ingest_fn, field, now, floor=floor, slice_length=slice_length, max_slices=max_slices)
            outcomes.append(_record(account, kind, "", now, work))
        except AzureTransientError as exc:
            transient = transient or exc
            outcomes.append(PollOutcome(kind, "", False, 0, error=f"transient: {exc}"))
    if transient is not None:
        raise transient
    return outcomes


def poll_account_once(account_id: int, *, now: datetime | None = None) -> list[PollOutcome]:
    """Every poll of one account in order (groups, each group's workers, jobs, logs), in the foreground.

    Transient failures are recorded and reported here instead of raised, so one slow endpoint does
    not hide the rest. Used by ``manage.py poll --once``.
    """
    now = now or timezone.now()
    outcomes: list[PollOutcome] = []

    def attempt(kind: str, scope: str, fn: Callable[[], PollOutcome | list[PollOutcome]]) -> None:
        try:
            result = fn()
        except AzureTransientError as exc:
            outcomes.append(PollOutcome(kind, scope, False, 0, error=f"transient: {exc}"))
            return
        outcomes.extend(result if isinstance(result, list) else [result])

    attempt(PollKind.GROUPS, "", lambda: poll_groups(account_id, now=now))
    for group_id, name in WorkerGroup.objects.filter(account_id=account_id, removed_at__isnull=True).values_list("pk", "name"):
        attempt(PollKind.WORKERS, name, functools.partial(poll_workers, account_id, group_id, now=now))
    attempt(PollKind.JOBS, "", lambda: poll_jobs(account_id, now=now))
    try:
        outcomes.extend(poll_logs(account_id, now=now))
    except AzureTransientError:
        # poll_logs recorded every query; collect the outcomes it recorded.
        runs = PollRun.objects.filter(account_id=account_id, kind__in=[k for k, *_ in _LOG_POLLS], started_at=now)
        outcomes.extend(PollOutcome(r.kind, "", r.ok, r.rows, error=r.error) for r in runs.order_by("pk"))
    return outcomes
