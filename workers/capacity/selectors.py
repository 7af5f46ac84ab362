"""Reads for the correlation page, the capacity page, the printable report and the correlations API.

Everything comes from the newest precomputed ``CapacityRun`` of a window (written by
``services.correlation.compute_findings``): a fixed, small number of queries per page whatever the
fleet size. The only computation per request is the M/M/c sizing, because its target is a form
field; it is closed-form per group (``workers.rules.analytics.recommend_workers``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from workers.rules import analytics
from workers.models import AnalysisWindow, CapacityRun, CorrelationFinding, GroupCapacity
from workers.capacity.measure import cpu_threshold, load_threshold, pickup_capacity_per_hour, trend_inputs

WINDOWS = [w.value for w in AnalysisWindow]
DEFAULT_TARGET_P95_SECONDS = 60.0
# Pages list the most urgent groups; a fleet of 500 groups gets its full tables as CSV.
HTML_ROW_LIMIT = 100
METRIC_LABELS = {"cpu": "CPU", "mem": "memory"}
TARGET_LABELS = {"queue_delay": "queue delay", "duration": "duration"}


class WindowError(ValueError):
    pass


def parse_window(raw: str | None, default: str = AnalysisWindow.WEEK) -> str:
    """A window key from the query string; a clear error for anything else."""
    value = (raw or default).strip()
    if value not in WINDOWS:
        raise WindowError(f"window must be one of {', '.join(WINDOWS)} (got {value[:20]!r})")
    return value


def latest_run(window: str) -> CapacityRun | None:
    """The newest complete run of a window (index capacityrun_latest), or None before the first."""
    return CapacityRun.objects.filter(window=window).order_by("-computed_at", "-id").first()


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
        worker=f.worker.name if f.worker_id else None,
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


# --- Capacity -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityRow:
    group: str
    group_id: int
    members: int
    online: int
    cpu_p50: float | None
    cpu_p95: float | None
    mem_p50: float | None
    mem_p95: float | None
    jobs: int
    arrival_rate_mean: float  # jobs/h
    arrival_rate_peak: float  # jobs/h, p95 of hourly counts
    pickup_capacity: float  # jobs/h the online workers can pick up
    pickup_used_pct: float | None
    concurrency_peak: float
    concurrency_capacity: int  # online x 50
    concurrency_used_pct: float | None
    mean_service_seconds: float | None
    queue_p50: float | None
    queue_p95: float | None
    recommended: int | None
    binding: str
    modelled_p95: float | None
    modelled_p95_without_one: float | None
    add_workers: int | None
    single_member: bool
    loses_target_without_one: bool
    forecast: dict
    recommendation_error: str = ""

    @property
    def forecast_cells(self) -> list[dict]:
        """The CPU and load forecasts, in that order, with calendar dates, for tables and CSV."""
        cells = []
        for series in ("cpu", "load"):
            fc = self.forecast.get(series)
            if not fc:
                cells.append({"series": series, "status": "missing", "note": "not computed"})
                continue
            dates = forecast_dates(fc)
            cells.append({
                "series": series, "status": fc.get("status", ""), "threshold": fc.get("threshold"),
                "slope_per_day": fc.get("slope_per_day"), "n": fc.get("n"), "note": fc.get("note", ""),
                "crossing": dates.get("day_crossing"), "earliest": dates.get("day_earliest"), "latest": dates.get("day_latest"),
            })
        return cells

    @property
    def spof(self) -> bool:
        return self.single_member or self.loses_target_without_one

    @property
    def spof_reason(self) -> str:
        if self.members <= 1:
            return "single-member group: no high availability"
        if self.online <= 1:
            return f"only {self.online} of {self.members} workers online"
        if self.loses_target_without_one:
            return "losing one worker breaks the p95 target"
        return ""


def _pct(used: float, capacity: float) -> float | None:
    return None if capacity <= 0 else 100.0 * used / capacity


def _capacity_row(g: GroupCapacity, *, target: float) -> CapacityRow:
    lam = g.arrival_rate_peak / 3600.0
    service = g.mean_service_seconds or 0.0
    recommended = binding = None
    modelled = without_one = None
    error = ""
    try:
        rec = analytics.recommend_workers(arrival_rate=lam, service_time=service, target_p95_seconds=target)
        recommended, binding = rec.workers, rec.binding
        modelled = rec.p95_at
    except ValueError as exc:
        error = str(exc)
    now_p95 = analytics.model_queue_p95(workers=g.online, arrival_rate=lam, service_time=service, slots_per_worker=analytics.MAX_CONCURRENT_JOBS_PER_WORKER)
    without_one = analytics.model_queue_p95(workers=g.online - 1, arrival_rate=lam, service_time=service, slots_per_worker=analytics.MAX_CONCURRENT_JOBS_PER_WORKER)
    pickup = pickup_capacity_per_hour(g.online)
    conc_cap = g.online * analytics.MAX_CONCURRENT_JOBS_PER_WORKER
    return CapacityRow(
        group=g.group.name,
        group_id=g.group_id,
        members=g.members,
        online=g.online,
        cpu_p50=g.cpu_p50,
        cpu_p95=g.cpu_p95,
        mem_p50=g.mem_p50,
        mem_p95=g.mem_p95,
        jobs=g.jobs,
        arrival_rate_mean=g.arrival_rate_mean,
        arrival_rate_peak=g.arrival_rate_peak,
        pickup_capacity=pickup,
        pickup_used_pct=_pct(g.arrival_rate_peak, pickup),
        concurrency_peak=g.concurrency_peak,
        concurrency_capacity=conc_cap,
        concurrency_used_pct=_pct(g.concurrency_peak, conc_cap),
        mean_service_seconds=g.mean_service_seconds,
        queue_p50=g.queue_p50,
        queue_p95=g.queue_p95,
        recommended=recommended,
        binding=binding or "",
        modelled_p95=_finite(now_p95) if g.online else None,
        modelled_p95_without_one=_finite(without_one),
        add_workers=None if recommended is None else max(0, recommended - g.online),
        single_member=g.members <= 1 or g.online <= 1,
        loses_target_without_one=g.online >= 1 and not without_one <= target,
        forecast=g.forecast or {},
        recommendation_error=error,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class TrendSeries:
    group: str
    group_id: int
    daily: list[dict]
    forecast: dict  # stored summaries (status, dates as day offsets)
    cpu: analytics.Forecast | None  # recomputed for the chart's band (one group only: cheap)
    load: analytics.Forecast | None
    cpu_threshold: float
    load_threshold: float | None


def _trend(g: GroupCapacity) -> TrendSeries:
    offsets, cpu_series, load_series = trend_inputs(g.daily)
    load_limit = load_threshold(g.online) if g.online else None
    return TrendSeries(
        group=g.group.name,
        group_id=g.group_id,
        daily=g.daily,
        forecast=g.forecast or {},
        cpu=analytics.forecast_saturation(offsets, cpu_series, threshold=cpu_threshold()),
        load=analytics.forecast_saturation(offsets, load_series, threshold=load_limit) if load_limit else None,
        cpu_threshold=cpu_threshold(),
        load_threshold=load_limit,
    )


@dataclass(frozen=True)
class CapacityReport:
    window: str
    run: CapacityRun | None
    target_p95: float
    rows: list[CapacityRow]
    heat_load: list[float | None]
    heat_queue: list[float | None]
    heat_scope: str
    trend: TrendSeries | None
    groups: list[tuple[int, str]]

    @property
    def spof_rows(self) -> list[CapacityRow]:
        return [r for r in self.rows if r.spof]

    @property
    def shown_rows(self) -> list[CapacityRow]:
        """What an HTML table shows (most urgent first); CSV exports carry every row."""
        return self.rows[:HTML_ROW_LIMIT]

    @property
    def shown_spof_rows(self) -> list[CapacityRow]:
        return self.spof_rows[:HTML_ROW_LIMIT]

    @property
    def hidden_rows(self) -> int:
        return max(0, len(self.rows) - HTML_ROW_LIMIT)

    @property
    def hidden_spof_rows(self) -> int:
        return max(0, len(self.spof_rows) - HTML_ROW_LIMIT)

    @property
    def saturating_rows(self) -> list[CapacityRow]:
        return [r for r in self.rows if any(f.get("status") in {"crossing", "saturated"} for f in r.forecast.values())]


def capacity_report(window: str, *, target_p95: float = DEFAULT_TARGET_P95_SECONDS, group_id: int | None = None) -> CapacityReport:
    """Per-group capacity with the M/M/c recommendation for ``target_p95`` seconds: 3 queries.

    Hour-of-week maps are fleet-wide unless ``group_id`` names a group of the run; the trend is
    that group's, or the group with the highest CPU p95.
    """
    run = latest_run(window)
    if run is None:
        return CapacityReport(window, None, target_p95, [], [], [], "fleet", None, [])
    # The per-hour and per-day series are only needed for one group: leave them out of the list.
    caps = list(
        GroupCapacity.objects.filter(run=run).select_related("group").defer("heat_load", "heat_queue", "daily").order_by("group__name", "group_id")
    )
    rows = [_capacity_row(g, target=target_p95) for g in caps]
    rows.sort(key=lambda r: (not r.spof, -(r.add_workers or 0), -(r.cpu_p95 or 0), r.group))
    chosen_id = group_id if group_id and any(g.group_id == group_id for g in caps) else None
    busiest = max(caps, key=lambda g: (g.cpu_p95 or -1, -g.group_id), default=None)
    source_id = chosen_id if chosen_id is not None else (busiest.group_id if busiest else None)
    source = GroupCapacity.objects.select_related("group").get(run=run, group_id=source_id) if source_id is not None else None
    if chosen_id is not None and source is not None:
        heat_load, heat_queue, scope = source.heat_load, source.heat_queue, source.group.name
    else:
        heat_load, heat_queue, scope = run.fleet.get("heat_load", []), run.fleet.get("heat_queue", []), "fleet"
    trend = _trend(source) if source is not None else None
    return CapacityReport(
        window=window,
        run=run,
        target_p95=target_p95,
        rows=rows,
        heat_load=list(heat_load),
        heat_queue=list(heat_queue),
        heat_scope=scope,
        trend=trend,
        groups=[(g.group_id, g.group.name) for g in caps],
    )


def forecast_dates(forecast: dict) -> dict:
    """Calendar dates for a stored forecast summary (day offsets from its first day)."""
    first = forecast.get("first_day")
    if not first:
        return {}
    base = date.fromisoformat(first)
    out = {}
    for key in ("day_crossing", "day_earliest", "day_latest"):
        value = forecast.get(key)
        out[key] = None if value is None else base + timedelta(days=float(value))
    return out
