"""Reads for the correlation page and the correlations API: the findings of the newest run.

A finding relates a worker's (or a group's busiest member's) CPU or memory to its group's queue
delay or duration; the run stores the flagged ones ranked and the strongest unflagged ones with the
reasons they were not flagged. A fixed, small number of queries per page whatever the fleet size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from workers.capacity.selectors.runs import latest_run, run_data_span
from workers.models import CapacityRun, CorrelationFinding
from workers.rules.coverage import DataSpan

# What a finding relates, as the pages and the stored effect sentences name it.
METRIC_LABELS = {"cpu": "CPU", "mem": "memory"}
TARGET_LABELS = {"queue_delay": "queue delay", "duration": "duration"}


@dataclass(frozen=True)
class FindingRow:
    id: int
    rank: int
    group: str
    group_id: int
    worker: str | None
    worker_id: int | None
    metric: str
    target: str
    flagged: bool
    pearson: float | None
    spearman: float | None
    p_value: float | None
    effect_p_value: float | None
    n: int
    slope: float | None
    intercept: float | None
    metric_p95: float | None
    target_p95_high: float | None
    target_p95_low: float | None
    effect_ratio: float | None
    effect: str
    reasons: list[str]
    points: list[list[float]] = field(default_factory=list, repr=False)

    @property
    def metric_label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)

    @property
    def target_label(self) -> str:
        return TARGET_LABELS.get(self.target, self.target)

    @property
    def p_value_text(self) -> str:
        """p-values span 1e-30 .. 1: two significant digits, scientific when small."""
        return "n/a" if self.p_value is None else f"{self.p_value:.2g}"

    @property
    def effect_p_value_text(self) -> str:
        return "not tested" if self.effect_p_value is None else f"{self.effect_p_value:.2g}"

    @property
    def scope(self) -> str:
        return "worker" if self.worker_id else "group-level (busiest member)"

    def as_api(self) -> dict:
        return {
            "rank": self.rank,
            "group": self.group,
            "worker": self.worker,
            "metric": self.metric,
            "target": self.target,
            "pearson": _r(self.pearson, 4),
            "spearman": _r(self.spearman, 4),
            "n": self.n,
            "p_value": self.p_value,
            "effect_p_value": self.effect_p_value,
            "flagged": self.flagged,
            "slope_seconds_per_pct": _r(self.slope, 4),
            "metric_p95_pct": _r(self.metric_p95, 2),
            "target_p95_seconds_under_pressure": _r(self.target_p95_high, 2),
            "target_p95_seconds_otherwise": _r(self.target_p95_low, 2),
            "effect_ratio": _r(self.effect_ratio, 3),
            "effect": self.effect,
        }


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _finding_row(f: CorrelationFinding, *, with_points: bool) -> FindingRow:
    return FindingRow(
        id=f.pk,
        rank=f.rank,
        group=f.group.name,
        group_id=f.group_id,
        worker=f.worker.name if f.worker is not None else None,
        worker_id=f.worker_id,
        metric=f.metric,
        target=f.target,
        flagged=f.flagged,
        pearson=f.pearson,
        spearman=f.spearman,
        p_value=f.p_value,
        effect_p_value=f.effect_p_value,
        n=f.n,
        slope=f.slope,
        intercept=f.intercept,
        metric_p95=f.metric_p95,
        target_p95_high=f.target_p95_high,
        target_p95_low=f.target_p95_low,
        effect_ratio=f.effect_ratio,
        effect=f.effect,
        reasons=list(f.reasons or []),
        points=list(f.points or []) if with_points else [],
    )


@dataclass(frozen=True)
class CorrelationReport:
    window: str
    run: CapacityRun | None
    findings: list[FindingRow]  # flagged, ranked
    examined: list[FindingRow]  # strongest unflagged, with the reasons
    selected: FindingRow | None  # the one drawn as a scatter

    @property
    def data(self) -> DataSpan | None:
        """The part of the run's window our data covers (its ``notice`` says when it is partial)."""
        return run_data_span(self.run) if self.run is not None else None


def correlation_report(window: str, *, selected_id: int | None = None) -> CorrelationReport:
    """Flagged findings (ranked) and the strongest unflagged pairs of the newest run, and the scatter
    points of one of them: 3 queries, whatever the number of findings."""
    run = latest_run(window)
    if run is None:
        return CorrelationReport(window=window, run=None, findings=[], examined=[], selected=None)
    rows = list(CorrelationFinding.objects.filter(run=run).select_related("group", "worker").defer("points").order_by("rank"))
    findings = [_finding_row(f, with_points=False) for f in rows if f.flagged]
    examined = [_finding_row(f, with_points=False) for f in rows if not f.flagged]
    ids = {f.pk for f in rows}
    pick = selected_id if selected_id in ids else (rows[0].pk if rows else None)
    selected = None
    if pick is not None:
        selected = _finding_row(CorrelationFinding.objects.select_related("group", "worker").get(pk=pick), with_points=True)
    return CorrelationReport(window=window, run=run, findings=findings, examined=examined, selected=selected)


def api_findings(window: str, *, include_unflagged: bool = False) -> tuple[CapacityRun | None, list[dict]]:
    """The API's list: flagged findings ranked (plus the examined ones if asked). 2 queries."""
    run = latest_run(window)
    if run is None:
        return None, []
    qs = CorrelationFinding.objects.filter(run=run).select_related("group", "worker").defer("points").order_by("rank")
    if not include_unflagged:
        qs = qs.filter(flagged=True)
    return run, [_finding_row(f, with_points=False).as_api() for f in qs]
