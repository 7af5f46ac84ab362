"""Reads for the capacity page and the printable capacity review: per-group load, sizing and trend.

Everything comes from the newest precomputed run of a window (``runs.latest_run``): a fixed, small
number of queries per page whatever the fleet size. The only computation per request is the M/M/c
sizing, because its target is a form field; it is closed-form per group
(``workers.rules.queueing.recommend_workers``). Saturation limits and forecast dates are pure rules
(``workers.rules.saturation``, ``workers.rules.pressure``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workers.capacity.selectors.runs import latest_run, run_data_span
from workers.models import CapacityRun, GroupCapacity
from workers.rules import queueing, saturation
from workers.rules.coverage import DataSpan
from workers.rules.forecast import Forecast, forecast_saturation
from workers.rules.pressure import PressureLimits

DEFAULT_TARGET_P95_SECONDS = 60.0
# Pages list the most urgent groups; a fleet of 500 groups gets its full tables as CSV.
HTML_ROW_LIMIT = 100


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
        cells: list[dict[str, Any]] = []
        for series in ("cpu", "load"):
            fc = self.forecast.get(series)
            if not fc:
                cells.append({"series": series, "status": "missing", "note": "not computed"})
                continue
            dates = saturation.forecast_dates(fc)
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
    without_one = None
    error = ""
    try:
        rec = queueing.recommend_workers(arrival_rate=lam, service_time=service, target_p95_seconds=target)
        recommended, binding = rec.workers, rec.binding
    except ValueError as exc:
        error = str(exc)
    now_p95 = queueing.model_queue_p95(workers=g.online, arrival_rate=lam, service_time=service, slots_per_worker=queueing.MAX_CONCURRENT_JOBS_PER_WORKER)
    without_one = queueing.model_queue_p95(workers=g.online - 1, arrival_rate=lam, service_time=service,
                                           slots_per_worker=queueing.MAX_CONCURRENT_JOBS_PER_WORKER)
    pickup = saturation.pickup_capacity_per_hour(g.online)
    conc_cap = g.online * queueing.MAX_CONCURRENT_JOBS_PER_WORKER
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
    cpu: Forecast | None  # recomputed for the chart's band (one group only: cheap)
    load: Forecast | None
    cpu_threshold: float
    load_threshold: float | None


def _trend(g: GroupCapacity, *, cpu_limit: float) -> TrendSeries:
    """One group's daily series with its CPU and load forecasts recomputed for the chart's band."""
    offsets, cpu_series, load_series = saturation.trend_inputs(g.daily)
    load_limit = saturation.load_threshold(g.online) if g.online else None
    return TrendSeries(
        group=g.group.name,
        group_id=g.group_id,
        daily=g.daily,
        forecast=g.forecast or {},
        cpu=forecast_saturation(offsets, cpu_series, threshold=cpu_limit),
        load=forecast_saturation(offsets, load_series, threshold=load_limit) if load_limit else None,
        cpu_threshold=cpu_limit,
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
    cpu_threshold: float  # the CPU pressure limit the CPU trends are judged against

    @property
    def data(self) -> DataSpan | None:
        """The part of the run's window our data covers (its ``notice`` says when it is partial)."""
        return run_data_span(self.run) if self.run is not None else None

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
    cpu_limit = PressureLimits.from_settings().cpu_pct
    if run is None:
        return CapacityReport(window, None, target_p95, [], [], [], "fleet", None, [], cpu_limit)
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
    trend = _trend(source, cpu_limit=cpu_limit) if source is not None else None
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
        cpu_threshold=cpu_limit,
    )
