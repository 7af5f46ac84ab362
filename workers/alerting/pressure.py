"""Sustained CPU/memory pressure: which workers need a pressure alert, and the figures its email shows.

Microsoft's Hybrid Runbook Worker troubleshooting guide names a machine below the minimum hardware
as a cause of delayed and timed-out jobs. Such a worker never goes offline, so the outbox of status
changes never sees it; ``pressure_decisions`` looks at the one-minute ``UtilizationSample`` rows
instead. It only reads: ``workers.alerting.outbox.process_outbox`` opens and resolves the alerts
under its lock, so running it twice (or two beats at once) decides the same thing and acts once.

Bounded work per call: the candidates are workers whose latest reading is above a threshold (the
``HybridWorker`` row, no sample scan) plus workers with an open pressure alert; one aggregate query
over their samples of the window (the ``(worker, ts)`` unique index) counts samples and high
samples per worker. A worker at the opening share has a high latest reading most minutes, so it is
picked up within a minute or two of crossing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q

from workers.models import Alert, AlertKind, AlertMember, AlertState, HybridWorker, Job, UtilizationSample, WorkerStatus
from workers.rules.pressure import PressureLimits, pressure_alert_open
from workers.rules.stats import percentile


@dataclass(frozen=True)
class PressureDecisions:
    to_open: list[HybridWorker]
    to_resolve: list[Alert]


@dataclass(frozen=True)
class PressureStats:
    """CPU/memory over the window (p50 and max, percent) and how many samples crossed a threshold."""

    minutes: int
    samples: int
    high: int
    cpu_high: int
    mem_high: int
    cpu_p50: float | None
    cpu_max: float | None
    mem_p50: float | None
    mem_max: float | None

    @property
    def share(self) -> float:
        return self.high / self.samples if self.samples else 0.0


@dataclass(frozen=True)
class QueueDelay:
    """The group's queue delay p95 (seconds) over the last hour and over the 24 h before it."""

    last_hour_p95: float | None
    last_hour_jobs: int
    previous_p95: float | None
    previous_jobs: int

    @property
    def worse(self) -> bool:
        """Clearly worse than usual: half as long again and at least 10 s more (noise is not a delay)."""
        if self.last_hour_p95 is None or self.previous_p95 is None:
            return False
        return self.last_hour_p95 >= max(self.previous_p95 * 1.5, self.previous_p95 + 10.0)


def window() -> timedelta:
    return timedelta(minutes=settings.ALERT_PRESSURE_MINUTES)


def _high_filter() -> Q:
    """A reading at or above either pressure limit, as a filter on ``cpu_pct``/``mem_pct`` columns."""
    limits = PressureLimits.from_settings()
    return Q(cpu_pct__gte=limits.cpu_pct) | Q(mem_pct__gte=limits.mem_pct)


def pressure_decisions(*, now: datetime, skip_accounts: set[int]) -> PressureDecisions:
    """Workers whose pressure alert should open, and open pressure alerts that should resolve.

    Skipped: workers that are down (offline, or in an open down/flapping alert: that alert speaks
    for them), removed workers (their open alert resolves), and accounts in ``skip_accounts``
    (monitoring blind: no new data, nothing to decide).
    """
    since = now - window()
    open_members = {
        m.worker_id: m
        for m in AlertMember.objects.filter(alert__kind=AlertKind.PRESSURE, alert__state=AlertState.OPEN).select_related(
            "alert", "worker__group"
        )
    }
    hot = (
        HybridWorker.objects.filter(removed_at__isnull=True, utilization_at__gt=since, group__account__enabled=True)
        .filter(_high_filter())
        .exclude(status=WorkerStatus.OFFLINE)
        .exclude(pk__in=list(open_members))
        .select_related("group")
    )
    candidates = {w.pk: w for w in hot}
    busy = set(
        AlertMember.objects.filter(
            worker_id__in=[*candidates, *open_members],
            recovered_at__isnull=True,
            alert__state=AlertState.OPEN,
            alert__kind__in=(AlertKind.WORKER_DOWN, AlertKind.GROUP_ROLLUP, AlertKind.FLAPPING),
        ).values_list("worker_id", flat=True)
    )
    ids = [*candidates, *open_members]
    counts: dict[int, tuple[int, int]] = {}
    if ids:
        rows = (
            UtilizationSample.objects.filter(worker_id__in=ids, ts__gt=since, ts__lte=now)
            .values("worker_id")
            .annotate(total=Count("pk"), high=Count("pk", filter=_high_filter()))
        )
        counts = {r["worker_id"]: (r["total"], r["high"]) for r in rows}
    share: float = settings.ALERT_PRESSURE_SHARE
    clear_share: float = settings.ALERT_PRESSURE_CLEAR_SHARE
    min_samples: int = settings.ALERT_PRESSURE_MIN_SAMPLES
    to_open = []
    for pk, worker in candidates.items():
        if pk in busy or worker.group.account_id in skip_accounts:
            continue
        total, high = counts.get(pk, (0, 0))
        if pressure_alert_open(samples=total, high=high, is_open=False, share=share, clear_share=clear_share, min_samples=min_samples):
            to_open.append(worker)
    to_resolve = []
    for pk, member in open_members.items():
        worker = member.worker
        if worker.removed_at is not None:
            to_resolve.append(member.alert)
            continue
        if pk in busy or worker.status == WorkerStatus.OFFLINE or worker.group.account_id in skip_accounts:
            continue
        total, high = counts.get(pk, (0, 0))
        if not pressure_alert_open(samples=total, high=high, is_open=True, share=share, clear_share=clear_share, min_samples=min_samples):
            to_resolve.append(member.alert)
    return PressureDecisions(to_open=to_open, to_resolve=to_resolve)


def pressure_stats(worker_id: int, *, now: datetime) -> PressureStats:
    """The worker's CPU/memory over the window ending at ``now`` (at most one row per minute)."""
    rows = list(
        UtilizationSample.objects.filter(worker_id=worker_id, ts__gt=now - window(), ts__lte=now).values_list("cpu_pct", "mem_pct")
    )
    cpu = [c for c, _ in rows if c is not None]
    mem = [m for _, m in rows if m is not None]
    limits = PressureLimits.from_settings()
    return PressureStats(
        minutes=settings.ALERT_PRESSURE_MINUTES,
        samples=len(rows),
        high=sum(1 for c, m in rows if limits.high(c, m)),
        cpu_high=sum(1 for c in cpu if limits.cpu_high(c)),
        mem_high=sum(1 for m in mem if limits.mem_high(m)),
        cpu_p50=percentile(cpu, 50),
        cpu_max=max(cpu) if cpu else None,
        mem_p50=percentile(mem, 50),
        mem_max=max(mem) if mem else None,
    )


def group_queue_delay(group_id: int | None, *, now: datetime) -> QueueDelay:
    """Queue delay p95 of the group's jobs queued in the last hour vs the 24 h before (job_group_created index)."""
    if group_id is None:
        return QueueDelay(None, 0, None, 0)
    hour_ago = now - timedelta(hours=1)
    rows = Job.objects.filter(
        group_id=group_id, created_at__gte=hour_ago - timedelta(hours=24), created_at__lte=now, queue_seconds__isnull=False
    ).values_list("created_at", "queue_seconds")
    recent: list[float] = []
    before: list[float] = []
    for created_at, seconds in rows.iterator(chunk_size=5000):
        assert seconds is not None  # the query filters queue_seconds__isnull=False
        (recent if created_at >= hour_ago else before).append(seconds)
    return QueueDelay(percentile(recent, 95), len(recent), percentile(before, 95), len(before))
