"""The ping poll (writes): Azure Monitor's ``HybridWorkerPing`` per worker, the third liveness signal.

Every ``POLL_PING_SECONDS`` (default 60) per account: one metrics call split by the ``HybridWorker``
dimension (``workers.azure.metrics``) over the window since the account's last successful ping poll
minus ``POLL_OVERLAP_SECONDS`` (at least ``PING_WINDOW_MINUTES``, at most ``POLL_BACKFILL_HOURS``
back: a bucket lands a few minutes late). Each dimension value is matched to the account's current
workers by name, case-insensitively, an FQDN matching the short name (as Heartbeat ``Computer`` is).
``last_ping_at`` never moves backwards (keep-newer UPDATE under row locks, in primary-key order), and
each observation extends the worker's ``ping`` signal span. Every poll writes one ``PollRun`` of kind
``ping``: the pages' freshness, the blind alert and the status refresh's "last look" read it like the
other polls. Safe to run twice.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.utils import timezone

from workers.azure.connection import connection_from_account
from workers.azure.metrics import PingReader
from workers.azure.records import PingRecord
from workers.fleet import signal_spans
from workers.fleet.ingest import IngestResult
from workers.fleet.locking import update_workers_in_pk_order
from workers.fleet.polling import PollOutcome, _record, _Work
from workers.fleet.selectors.poll_evidence import finished_polls
from workers.fleet.telemetry import _ComputerIndex
from workers.models import AutomationAccount, HybridWorker, PollKind, SignalSource
from workers.rules.signals import tolerance

# The shortest window one ping poll reads: the newest buckets land 1-3 min late, so a window of a few
# minutes always holds a healthy worker's latest ping.
PING_WINDOW_MINUTES = 15


def ping_window_start(account_id: int, *, now: datetime) -> datetime:
    """Where the poll reads from: the start of our last successful ping poll minus the overlap, no
    later than ``PING_WINDOW_MINUTES`` and no earlier than ``POLL_BACKFILL_HOURS`` before ``now``."""
    last = (
        finished_polls(ok=True, account_id=account_id, kind=PollKind.PING, scope="")
        .order_by("-started_at").values_list("started_at", flat=True).first()
    )
    floor = now - timedelta(hours=settings.POLL_BACKFILL_HOURS)
    latest_start = now - timedelta(minutes=PING_WINDOW_MINUTES)
    if last is None:
        return latest_start
    return max(floor, min(latest_start, last - timedelta(seconds=settings.POLL_OVERLAP_SECONDS)))


def ingest_pings(account: AutomationAccount, records: list[PingRecord]) -> IngestResult:
    """Set each matched worker's ``last_ping_at`` (never backwards) and extend its ping span."""
    index = _ComputerIndex(account)
    latest: dict[int, datetime] = {}
    skipped = 0
    for rec in records:
        pks = index.find(rec.worker)
        if not pks:
            skipped += 1
            continue
        for pk in pks:
            if pk not in latest or rec.last_ping_at > latest[pk]:
                latest[pk] = rec.last_ping_at
    graces: dict[int, int] = {}
    if latest:
        graces = dict(cast(
            "list[tuple[int, int]]",
            list(HybridWorker.objects.filter(group__account=account, group__grace_seconds__isnull=False, removed_at__isnull=True)
                 .values_list("pk", "group__grace_seconds")),
        ))

    def record_spans(batch: list[int]) -> None:
        by_grace: dict[int | None, dict[int, datetime]] = {}
        for pk in batch:
            by_grace.setdefault(graces.get(pk), {})[pk] = latest[pk]
        for grace, observations in by_grace.items():
            signal_spans.record_signal(SignalSource.PING, observations, tolerance(SignalSource.PING, grace))

    written = update_workers_in_pk_order(
        {pk: {"last_ping_at": at} for pk, at in latest.items()}, ["last_ping_at"], keep_newer="last_ping_at",
        after_batch=record_spans,
    )
    return IngestResult(rows=written, skipped=skipped)


def poll_pings(account_id: int, *, now: datetime | None = None, credential: object = None) -> PollOutcome:
    """Read and store one account's pings (one metrics call); records a ``PollRun`` of kind ``ping``.

    ``AzureTransientError`` propagates after it is recorded (the task retries); ``AzureError`` is
    recorded and returned in the outcome.
    """
    now = now or timezone.now()
    account = AutomationAccount.objects.get(pk=account_id)
    start = ping_window_start(account_id, now=now)

    def work() -> _Work:
        with PingReader(connection_from_account(account), credential=credential) as reader:
            records = reader.read(start=start, end=now)
        result = ingest_pings(account, records)
        return _Work(result.rows, result.skipped)

    return _record(account, PollKind.PING, "", now, work)
