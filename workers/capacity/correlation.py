"""Precompute "where pressure explains delay": CPU/memory versus queue delay and duration.

Azure does not say which member of a group ran a job (``Job.worker`` is set only for single-member
groups), so a worker's pressure is related to the delays of its GROUP's jobs: one point per job,
x = the worker's mean CPU (or memory) in the bucket in which the job was created (the minutes it
waited; for duration: the bucket in which it started), y = the job's queue delay (or duration). A
group-level pair uses the busiest member per bucket. ``workers.rules.findings.assess_pair`` decides
which pairs are findings (positive association AND real pressure AND effect size AND a significant
effect by permutation test).

Buckets: 5 minutes from the one-minute ``UtilizationSample`` rows for the 24 h window; one hour
from the ``UtilizationHourly`` rollup for 7 d and 30 d (raw minutes over weeks would be too many
rows). Utilization is averaged per bucket in SQL, so a run reads one row per worker per bucket.

``compute_findings(window, now)`` writes one ``CapacityRun`` with its findings and the groups'
capacity figures in ONE transaction and then prunes older runs of that window; readers always take
the newest run, so running it twice (or two beats at once) only leaves an extra complete snapshot.
Called by the Celery task ``workers.capacity.tasks.refresh_capacity`` and by
``manage.py analyze_capacity``.
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Avg, F, QuerySet

from workers.capacity.measure import fleet_data_start, measure_group_capacity
from workers.capacity.selectors.findings import METRIC_LABELS, TARGET_LABELS
from workers.db import EpochBucket, EpochSeconds
from workers.models import (
    AnalysisWindow,
    CapacityRun,
    CorrelationFinding,
    GroupCapacity,
    HybridWorker,
    Job,
    UtilizationHourly,
    UtilizationSample,
    WorkerGroup,
)
from workers.rules import findings, latency
from workers.rules.pressure import PressureLimits

log = logging.getLogger(__name__)

# The analysed windows (``AnalysisWindow``) and their lengths (the one table of window lengths).
WINDOWS: dict[str, timedelta] = {window.value: latency.WINDOWS[window.value] for window in AnalysisWindow}
BUCKET_SECONDS: dict[str, int] = {AnalysisWindow.DAY: 300, AnalysisWindow.WEEK: 3600, AnalysisWindow.MONTH: 3600}
MAX_POINTS = 400
# Unflagged pairs kept per run (the strongest by rho), so the page can show why they were not flagged.
KEEP_UNFLAGGED = 30
RUNS_KEPT_PER_WINDOW = 2


def pressure_rules() -> dict[str, findings.FindingRules]:
    """Finding rules per metric, at the one pair of pressure limits (``PressureLimits.from_settings``)."""
    limits = PressureLimits.from_settings()
    return {metric: findings.FindingRules(pressure_threshold=limits.of(metric)) for metric in ("cpu", "mem")}


@dataclass
class _Pair:
    group_id: int
    worker_id: int | None
    metric: str
    target: str
    assessment: findings.PairAssessment
    x: np.ndarray
    y: np.ndarray

    @property
    def points(self) -> list[list[float]]:
        """Scatter points, built only for the pairs a run keeps."""
        return _downsample(self.x, self.y)


def _downsample(x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size > MAX_POINTS:
        idx = np.linspace(0, x.size - 1, MAX_POINTS).round().astype(int)
        x, y = x[idx], y[idx]
    return [[round(float(a), 2), round(float(b), 2)] for a, b in zip(x, y)]


def _jobs(group_id: int, start: datetime, end: datetime) -> np.ndarray:
    """(created epoch s, started epoch s, queue s, duration s) of the group's jobs started in the window.

    Timestamps come back as epoch seconds computed by the database: no datetime parsing per row.
    """
    rows = (
        Job.objects.filter(group_id=group_id, started_at__gte=start, started_at__lt=end)
        .annotate(c=EpochSeconds(F("created_at")), s=EpochSeconds(F("started_at")))
        .values_list("c", "s", "queue_seconds", "duration_seconds")
    )
    out = np.asarray(list(rows.iterator(chunk_size=10000)), dtype=float)  # None -> nan
    return out.reshape(-1, 4)


def _utilization_buckets(
    worker_ids: list[int], start: datetime, end: datetime, size: int, *, hourly: bool
) -> dict[int, dict[int, tuple[float | None, float | None]]]:
    """worker -> bucket -> (mean CPU %, mean memory %)."""
    qs: QuerySet[Any, Any]  # hourly means or raw samples: two models, the same annotated values
    if hourly:
        qs = UtilizationHourly.objects.filter(worker_id__in=worker_ids, hour__gte=start, hour__lt=end).annotate(
            bucket=EpochBucket(F("hour"), size)
        ).values("worker_id", "bucket").annotate(c=Avg("cpu_avg"), m=Avg("mem_avg"))
    else:
        qs = UtilizationSample.objects.filter(worker_id__in=worker_ids, ts__gte=start, ts__lt=end).annotate(
            bucket=EpochBucket(F("ts"), size)
        ).values("worker_id", "bucket").annotate(c=Avg("cpu_pct"), m=Avg("mem_pct"))
    out: dict[int, dict[int, tuple[float | None, float | None]]] = defaultdict(dict)
    for wid, b, c, m in qs.values_list("worker_id", "bucket", "c", "m"):
        out[wid][int(b)] = (c, m)
    return out


def _arr(values: list[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _dense(series: dict[int, tuple[float | None, float | None]], first: int, size: int, index: int) -> np.ndarray:
    """A bucket -> value map as a dense array from bucket ``first`` (NaN where nothing was sampled)."""
    arr = np.full(size, np.nan)
    for b, values in series.items():
        value = values[index]
        if value is not None and 0 <= b - first < size:
            arr[b - first] = value
    return arr


def examine_group(group: WorkerGroup, *, start: datetime, end: datetime, size: int, hourly: bool, rules: dict[str, findings.FindingRules]) -> list[_Pair]:
    """Every (member or group-level) x (cpu, mem) x (queue_delay, duration) pair of one group.

    One point per job: for queue delay, the member's utilization in the bucket in which the job was
    created (the pressure while it waited); for duration, in the bucket in which it started.
    """
    jobs = _jobs(group.pk, start, end)
    if jobs.shape[0] == 0:
        return []
    worker_ids = list(HybridWorker.objects.filter(group=group).values_list("pk", flat=True))
    util = _utilization_buckets(worker_ids, start - timedelta(seconds=3600), end, size, hourly=hourly)
    first = int(math.floor((start.timestamp() - 3600) / size))
    span = int(math.ceil(end.timestamp() / size)) - first + 1
    created_idx = np.clip(np.floor(jobs[:, 0] / size).astype(int) - first, 0, span - 1)
    started_idx = np.clip(np.floor(jobs[:, 1] / size).astype(int) - first, 0, span - 1)
    targets = {"queue_delay": (jobs[:, 2], created_idx), "duration": (jobs[:, 3], started_idx)}
    pairs: list[_Pair] = []
    dense: dict[str, list[np.ndarray]] = {"cpu": [], "mem": []}
    for wid in worker_ids:
        series = util.get(wid)
        if not series:
            continue
        for mi, metric in enumerate(("cpu", "mem")):
            values = _dense(series, first, span, mi)
            if not np.isfinite(values).any():
                continue
            dense[metric].append(values)
            for target, (y, idx) in targets.items():
                x = values[idx]
                pairs.append(_Pair(group.pk, wid, metric, target, findings.assess_pair(x, y, rules=rules[metric]), x, y))
    if len(util) > 1:  # group-level only adds something when there is more than one member
        for metric, arrays in dense.items():
            if not arrays:
                continue
            stacked = np.vstack(arrays)
            with np.errstate(all="ignore"):
                busiest = np.where(np.isfinite(stacked).any(axis=0), np.nanmax(np.where(np.isfinite(stacked), stacked, -np.inf), axis=0), np.nan)
            for target, (y, idx) in targets.items():
                x = busiest[idx]
                pairs.append(_Pair(group.pk, None, metric, target, findings.assess_pair(x, y, rules=rules[metric]), x, y))
    return pairs


def rank_pairs(pairs: list[_Pair]) -> list[_Pair]:
    """Flagged first; among them a finding that names a machine before a group-level one (it is what
    an operator can act on), then by strength (rho x log2 effect ratio). Unflagged ones by rho."""

    def key(p: _Pair) -> tuple:
        corr = p.assessment.correlation
        rho = corr.spearman if corr else -2.0
        if p.assessment.flagged:
            return (0, p.worker_id is None, -p.assessment.score, -rho)
        return (1, False, -rho, 0.0)

    return sorted(pairs, key=key)


def _finding(run: CapacityRun, rank: int, pair: _Pair, rules: dict[str, findings.FindingRules]) -> CorrelationFinding:
    a = pair.assessment
    corr, fit = a.correlation, a.fit
    threshold = rules[pair.metric].pressure_threshold
    return CorrelationFinding(
        run=run,
        rank=rank,
        group_id=pair.group_id,
        worker_id=pair.worker_id,
        metric=pair.metric,
        target=pair.target,
        flagged=a.flagged,
        pearson=corr.pearson if corr else None,
        pearson_p=corr.pearson_p if corr else None,
        spearman=corr.spearman if corr else None,
        p_value=corr.p_value if corr else None,
        effect_p_value=a.effect_p,
        n=corr.n if corr else 0,
        slope=fit.slope if fit else None,
        intercept=fit.intercept if fit else None,
        metric_p95=a.metric_p95,
        target_p95_high=a.target_p95_high,
        target_p95_low=a.target_p95_low,
        effect_ratio=a.ratio if a.ratio is None or np.isfinite(a.ratio) else None,
        score=a.score,
        effect=findings.effect_sentence(metric_label=METRIC_LABELS[pair.metric], target_label=TARGET_LABELS[pair.target], threshold=threshold, ratio=a.ratio),
        reasons=list(a.reasons),
        points=pair.points,
    )


def fleet_heat(capacities: list[GroupCapacity]) -> dict[str, list[float | None]]:
    """Fleet-wide hour-of-week maps: jobs per hour summed over groups, queue delay weighted by jobs.
    An hour of the week no group has data for stays None (a blank cell, not a zero)."""
    load = np.zeros(168)
    seen = np.zeros(168, dtype=bool)
    qsum = np.zeros(168)
    qweight = np.zeros(168)
    for cap in capacities:
        for h in range(min(168, len(cap.heat_load))):
            if cap.heat_load[h] is None:
                continue  # no data for that hour of the week: missing, not zero
            seen[h] = True
            jobs = cap.heat_load[h] or 0.0
            load[h] += jobs
            if cap.heat_queue[h] is not None and jobs:
                qsum[h] += cap.heat_queue[h] * jobs
                qweight[h] += jobs
    return {
        "heat_load": [round(float(v), 3) if ok else None for v, ok in zip(load, seen)],
        "heat_queue": [round(float(s / w), 2) if w else None for s, w in zip(qsum, qweight)],
    }


def compute_findings(window: str, now: datetime) -> CapacityRun:
    """Compute and store a complete run (findings + group capacity) for ``window`` ending at ``now``.

    Safe to run twice: each call writes a new complete snapshot in one transaction, then deletes all
    but the newest ``RUNS_KEPT_PER_WINDOW`` runs of the window.
    """
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")
    began = time.monotonic()
    start = now - WINDOWS[window]
    size = BUCKET_SECONDS[window]
    hourly = size >= 3600
    rules = pressure_rules()
    groups = list(WorkerGroup.objects.filter(removed_at__isnull=True).order_by("pk"))
    data_start = fleet_data_start(start, now)
    pairs: list[_Pair] = []
    capacities = []
    for group in groups:
        try:
            pairs.extend(examine_group(group, start=start, end=now, size=size, hourly=hourly, rules=rules))
            capacities.append(measure_group_capacity(group, start=start, end=now, data_start=data_start, known_start=True))
        except Exception:  # one bad group is logged and skipped, never the whole run
            log.exception("capacity analysis failed for group %s", group.pk)
    ranked = rank_pairs(pairs)
    flagged = [p for p in ranked if p.assessment.flagged]
    kept = flagged + [p for p in ranked if not p.assessment.flagged][:KEEP_UNFLAGGED]
    with transaction.atomic():
        run = CapacityRun.objects.create(
            window=window,
            computed_at=now,
            window_start=start,
            bucket_seconds=size,
            pairs_examined=len(pairs),
            groups_examined=len(groups),
            rules={metric: asdict(r) for metric, r in rules.items()},
            fleet={**fleet_heat(capacities), "data_start": data_start.isoformat() if data_start else None},
        )
        CorrelationFinding.objects.bulk_create([_finding(run, i + 1, p, rules) for i, p in enumerate(kept)], batch_size=500)
        for cap in capacities:
            cap.run = run
        GroupCapacity.objects.bulk_create(capacities, batch_size=500)
        run.duration_ms = int((time.monotonic() - began) * 1000)
        run.save(update_fields=["duration_ms"])
        stale = CapacityRun.objects.filter(window=window).order_by("-computed_at", "-id").values_list("pk", flat=True)[RUNS_KEPT_PER_WINDOW:]
        CapacityRun.objects.filter(pk__in=list(stale)).delete()
    log.info("capacity run %s: window %s, %d groups, %d pairs, %d flagged, %d ms", run.pk, window, len(groups), len(pairs), len(flagged), run.duration_ms)
    return run


def compute_all(now: datetime) -> list[CapacityRun]:
    """Every window, shortest first. Safe to run twice (see compute_findings)."""
    return [compute_findings(window, now) for window in WINDOWS]

