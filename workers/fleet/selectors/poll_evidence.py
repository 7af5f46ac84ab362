"""Which poll runs count as evidence: the one rule the blind alert and the pages' freshness share.

A poll writes its ``PollRun`` when it starts (``ok=False``, ``finished_at`` null) and completes it
when it ends, so a poll still in flight is neither a failure nor fresh data: only *finished* runs
count. A run whose process died is closed as failed once it is overdue
(``workers.fleet.poll_sweep``), and from then on counts as the failure it was.

Everything that judges polls reads them through here: ``workers.alerting.blind`` (is monitoring
blind, and since when) and ``workers.fleet.selectors.freshness`` (how old the data the pages show
is), so the alert and the pages never disagree about which polls happened. The moment a run is
evidence of is its ``finished_at`` (when its answer was known), and a source is stale when its
latest successful run is older than ``STALE_AFTER_INTERVALS`` poll intervals.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Min, QuerySet

from workers.models import PollKind, PollRun


def finished_polls(**filters: Any) -> QuerySet[PollRun]:
    """The poll runs that count as evidence (finished ones), narrowed by ``filters``.

    ``filters`` may hold ``OuterRef`` values, so this also builds the freshness subqueries.
    """
    return PollRun.objects.filter(finished_at__isnull=False, **filters)


def poll_interval_seconds(kind: str) -> int:
    """How often a kind of poll runs (read at call time: tests change the settings)."""
    if kind in (PollKind.GROUPS, PollKind.WORKERS):
        return int(settings.POLL_WORKERS_SECONDS)
    if kind == PollKind.JOBS:
        return int(settings.POLL_JOBS_SECONDS)
    if kind == PollKind.PING:
        return int(settings.POLL_PING_SECONDS)
    return int(settings.POLL_LOGS_SECONDS)  # heartbeat, perf, events: one poll_logs task


def stale_after_seconds(kind: str) -> int:
    """Data of this kind is stale when its latest successful finished run is older than this."""
    return int(settings.STALE_AFTER_INTERVALS) * poll_interval_seconds(kind)


def failing_since(runs: QuerySet[PollRun]) -> datetime | None:
    """When the current spell of failures of ``runs`` (finished runs of one kind) began.

    None when the latest finished run succeeded (or there is none); otherwise the earliest finish
    of the failed runs started after the latest successful one: the condition's start, which the
    blind alert's grace period counts from and its email states. At most three queries.
    """
    latest = runs.order_by("-started_at", "-pk").values_list("ok", flat=True).first()
    if latest is None or latest:
        return None
    last_ok = runs.filter(ok=True).order_by("-started_at", "-pk").values_list("started_at", flat=True).first()
    failed = runs.filter(ok=False) if last_ok is None else runs.filter(ok=False, started_at__gt=last_ok)
    return failed.aggregate(at=Min("finished_at"))["at"]


def ping_ever_read(account_id: int) -> bool:
    """Whether the account's HybridWorkerPing has ever been read successfully (a finished, ok ping poll).

    Until it has, the ping is "not available" for the account (the metric refused, or no series for
    us): not a source of the pages' freshness and not a reason for the blind alert, so a setup without
    the ping is never stale or blind for it. Retention keeps the latest good run of each kind, so the
    answer never flips back once true.
    """
    return finished_polls(account_id=account_id, kind=PollKind.PING, ok=True).exists()
