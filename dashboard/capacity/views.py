"""Correlation page, capacity page, printable capacity review, correlations API, and their CSV exports.

Each view: validate the query string (a bad value is a 400 with a message) -> selector (reads the
newest precomputed run) -> charts_capacity -> render. Nothing here touches the ORM.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard.auth import api_view, page_view
from dashboard.capacity import charts as charts_capacity
from dashboard.csv_export import neutralise
from dashboard.ranges import Picker, RangeError, picker_context, range_from_request
from workers.capacity import selectors as sel
from workers.rules.forecast import FORECAST_METHOD
from workers.rules.pressure import PressureLimits
from workers.rules.queueing import MAX_CONCURRENT_JOBS_PER_WORKER

WINDOW_CHOICES = [(w, w) for w in sel.WINDOWS]
WINDOW_LABELS = {"24h": "last 24 h", "7d": "last 7 days", "30d": "last 30 days"}
BUCKET_LABELS = {300: "5-min", 900: "15-min", 3600: "1-hour"}


class CorrelationForm(forms.Form):
    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False)
    finding = forms.IntegerField(required=False, min_value=1)
    format = forms.ChoiceField(choices=[("html", "html"), ("csv", "csv")], required=False)


class CapacityForm(forms.Form):
    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False)
    target = forms.FloatField(
        required=False, min_value=1, max_value=86400, label="Target p95 queue delay (s)", help_text="1 s to 24 h."
    )
    group = forms.IntegerField(required=False, min_value=1)
    format = forms.ChoiceField(choices=[("html", "html"), ("csv", "csv")], required=False)
    table = forms.ChoiceField(
        choices=[(t, t) for t in ("groups", "recommendations", "spof", "forecast", "heatmap")], required=False
    )


def _bad_request(request: HttpRequest, form: forms.Form) -> HttpResponse:
    message = "; ".join(f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items())
    return render(request, "dashboard/bad_request.html", {"message": f"Bad query: {message}"}, status=400)


PRECOMPUTED_NOTE = (
    "24 h, 7 d and 30 d only: these figures come from analysis runs precomputed for those windows "
    "(correlations and forecasts need whole windows of data), so a custom range cannot be re-queried here"
)


def _picker(request: HttpRequest, default: str, drop: tuple[str, ...] = ()) -> Picker:
    """The range picker of a precomputed page: its windows as presets, no custom range (raises
    ``RangeError`` for ``from``/``to`` or an unknown window)."""
    rng = range_from_request(request, now=timezone.now(), default=default, allowed=tuple(sel.WINDOWS), custom=False)
    return picker_context(request, rng, allowed=tuple(sel.WINDOWS), custom=False, note=PRECOMPUTED_NOTE, drop=drop)


def _range_refused(request: HttpRequest, exc: RangeError) -> HttpResponse:
    return render(request, "dashboard/bad_request.html", {"message": f"Bad query: {exc}"}, status=400)


def _cell(value: Any) -> Any:
    """One capacity CSV cell: floats to 4 decimals (not finite: empty), flags as True/False, and every
    other value through ``dashboard.csv_export.neutralise`` (which defuses spreadsheet formulas)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "" if not math.isfinite(value) else round(value, 4)
    return neutralise(value)


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    """The whole table as one CSV attachment (the capacity tables are at most one row per group)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Correlation ---------------------------------------------------------------------------------


def _finding_csv(report: sel.CorrelationReport) -> HttpResponse:
    header = ["rank", "flagged", "group", "worker", "metric", "target", "pearson", "spearman", "p_value", "effect_p_value", "n",
              "metric_p95_pct", "target_p95_s_under_pressure", "target_p95_s_otherwise", "effect_ratio", "effect", "not_flagged_because"]
    rows = [
        [f.rank, f.flagged, f.group, f.worker or "(group-level)", f.metric, f.target, f.pearson, f.spearman, f.p_value, f.effect_p_value, f.n,
         f.metric_p95, f.target_p95_high, f.target_p95_low, f.effect_ratio, f.effect, "; ".join(f.reasons)]
        for f in report.findings + report.examined
    ]
    return csv_response(f"correlation-{report.window}.csv", header, rows)


@page_view
def correlation(request: HttpRequest) -> HttpResponse:
    form = CorrelationForm(request.GET)
    if not form.is_valid():
        return _bad_request(request, form)
    window = form.cleaned_data["window"] or "7d"
    try:
        picker = _picker(request, window, drop=("finding",))
    except RangeError as exc:
        return _range_refused(request, exc)
    report = sel.correlation_report(window, selected_id=form.cleaned_data["finding"])
    if form.cleaned_data["format"] == "csv":
        return _finding_csv(report)
    figures: dict[str, Any] = {}
    f = report.selected
    if f is not None and report.run is not None:
        threshold = float(report.run.rules[f.metric]["pressure_threshold"])
        figures["scatter"] = charts_capacity.scatter_with_fit(
            f.points, slope=f.slope, intercept=f.intercept, threshold=threshold, metric_label=f.metric_label,
            target_label=f.target_label, subject=f.worker or f"{f.group} (busiest member)",
            window_label=WINDOW_LABELS[window], bucket_label=BUCKET_LABELS.get(report.run.bucket_seconds, ""),
        )
    return render(request, "capacity/correlation.html", {
        "nav_section": "correlation", "report": report, "window": window, "windows": sel.WINDOWS, "picker": picker,
        "window_label": WINDOW_LABELS[window], "figures": figures,
        "bucket_label": BUCKET_LABELS.get(report.run.bucket_seconds, "") if report.run else "",
        # The limits a run made now would use (a stored run shows its own, ``report.run.rules``).
        "pressure": PressureLimits.from_settings(),
    })


@api_view
def api_correlations(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/correlations?window=7d[&all=1] -> the newest run's findings, ranked."""
    unknown = sorted(set(request.GET) - {"window", "all", "token"})
    if unknown:
        return JsonResponse({"error": f"unknown parameter(s): {', '.join(u[:40] for u in unknown)}"}, status=400)
    try:
        window = sel.parse_window(request.GET.get("window"))
    except sel.WindowError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    include_all = request.GET.get("all", "0")
    if include_all not in ("0", "1"):
        return JsonResponse({"error": "all must be 0 or 1"}, status=400)
    run, findings = sel.api_findings(window, include_unflagged=include_all == "1")
    return JsonResponse({
        "window": window,
        "computed_at": run.computed_at.isoformat().replace("+00:00", "Z") if run else None,
        "bucket_seconds": run.bucket_seconds if run else None,
        "pairs_examined": run.pairs_examined if run else 0,
        "method": "One point per job of the group: the worker's mean CPU/memory (%) in the bucket when the job was created "
                  "(started, for duration) vs the job's queue delay / duration (s); Azure does not say which member ran a job. "
                  "p_value is Spearman's two-sided p. Flagged only with rho > 0 AND metric p95 above the pressure threshold AND "
                  "target p95 under pressure >= min_ratio x otherwise AND effect_p_value (one-sided permutation test) < alpha.",
        "rules": run.rules if run else {},
        "findings": findings,
    })


# --- Capacity ------------------------------------------------------------------------------------


def _capacity_context(request: HttpRequest, form: CapacityForm) -> dict[str, Any]:
    """Raises ``RangeError`` for a custom range (these pages show precomputed windows only)."""
    window = form.cleaned_data["window"] or ("30d" if request.resolver_match and request.resolver_match.url_name == "capacity-report" else "7d")
    picker = _picker(request, window)
    target = form.cleaned_data["target"] or sel.DEFAULT_TARGET_P95_SECONDS
    report = sel.capacity_report(window, target_p95=target, group_id=form.cleaned_data["group"])
    figures: dict[str, Any] = {}
    if report.run is not None:
        scope = "all groups" if report.heat_scope == "fleet" else report.heat_scope
        figures["heat_load"] = charts_capacity.hour_of_week_heatmap(
            report.heat_load, title=f"Jobs started per hour, {scope} (mean, {WINDOW_LABELS[window]})", unit="jobs/h")
        figures["heat_queue"] = charts_capacity.hour_of_week_heatmap(
            report.heat_queue, title=f"Mean queue delay, {scope} ({WINDOW_LABELS[window]})", unit="s", colour_scale=charts_capacity.DELAY_SCALE)
        t = report.trend
        if t is not None and len(t.daily) > 2:
            # The forecast is fitted on full days only; draw the same days so a partial day does not look like a drop.
            full_days = t.daily[1:-1]
            first = date.fromisoformat(t.daily[0]["day"])
            figures["trend_cpu"] = charts_capacity.trend_with_forecast(
                full_days, key="cpu_p95", forecast=t.cpu, threshold=t.cpu_threshold, first_day=first,
                title=f"{t.group}: daily CPU p95 of hourly means, with trend ({WINDOW_LABELS[window]})", y_title="CPU (%)")
            figures["trend_load"] = charts_capacity.trend_with_forecast(
                full_days, key="arrivals_peak", forecast=t.load, threshold=t.load_threshold, first_day=first,
                title=f"{t.group}: busiest hour's jobs started per day, with trend ({WINDOW_LABELS[window]})", y_title="jobs per hour")
    return {
        "nav_section": "capacity", "report": report, "window": window, "windows": sel.WINDOWS, "picker": picker,
        "window_label": WINDOW_LABELS[window], "target": target, "form": form, "figures": figures,
        "forecast_method": FORECAST_METHOD, "slots": MAX_CONCURRENT_JOBS_PER_WORKER,
    }


def _fmt_date(d: date | None) -> str:
    return d.isoformat() if d else ""


def _capacity_csv(ctx: dict[str, Any], table: str) -> HttpResponse:
    report: sel.CapacityReport = ctx["report"]
    window = report.window
    if table == "recommendations":
        header = ["group", "members", "online", "arrivals_peak_per_h", "mean_service_s", "target_p95_s", "recommended_workers",
                  "add_workers", "binding_constraint", "modelled_p95_s_now", "modelled_p95_s_without_one", "measured_queue_p95_s"]
        rows = [[r.group, r.members, r.online, r.arrival_rate_peak, r.mean_service_seconds, report.target_p95, r.recommended,
                 r.add_workers, r.binding or r.recommendation_error, r.modelled_p95, r.modelled_p95_without_one, r.queue_p95] for r in report.rows]
    elif table == "spof":
        header = ["group", "members", "online", "reason", "modelled_p95_s_without_one", "target_p95_s"]
        rows = [[r.group, r.members, r.online, r.spof_reason, r.modelled_p95_without_one, report.target_p95] for r in report.spof_rows]
    elif table == "forecast":
        header = ["group", "series", "status", "threshold", "slope_per_day", "crossing_date", "earliest", "latest", "days_used", "note"]
        rows = [
            [r.group, fc["series"], fc["status"], fc.get("threshold"), fc.get("slope_per_day"), _fmt_date(fc.get("crossing")),
             _fmt_date(fc.get("earliest")), _fmt_date(fc.get("latest")), fc.get("n"), fc.get("note", "")]
            for r in report.rows for fc in r.forecast_cells
        ]
    elif table == "heatmap":
        header = ["scope", "weekday", "hour_utc", "jobs_started_per_h", "mean_queue_delay_s"]
        rows = [[report.heat_scope, charts_capacity.DAYS[h // 24], h % 24,
                 report.heat_load[h] if h < len(report.heat_load) else None,
                 report.heat_queue[h] if h < len(report.heat_queue) else None] for h in range(168)]
    else:
        header = ["group", "members", "online", "cpu_p50_pct", "cpu_p95_pct", "mem_p50_pct", "mem_p95_pct", "jobs",
                  "arrivals_mean_per_h", "arrivals_peak_per_h", "pickup_capacity_per_h", "pickup_used_pct",
                  "concurrency_peak", "concurrency_capacity", "concurrency_used_pct", "queue_p50_s", "queue_p95_s"]
        rows = [[r.group, r.members, r.online, r.cpu_p50, r.cpu_p95, r.mem_p50, r.mem_p95, r.jobs, r.arrival_rate_mean,
                 r.arrival_rate_peak, r.pickup_capacity, r.pickup_used_pct, r.concurrency_peak, r.concurrency_capacity,
                 r.concurrency_used_pct, r.queue_p50, r.queue_p95] for r in report.rows]
    return csv_response(f"capacity-{table}-{window}.csv", header, rows)


@page_view
def capacity(request: HttpRequest) -> HttpResponse:
    form = CapacityForm(request.GET)
    if not form.is_valid():
        return _bad_request(request, form)
    try:
        ctx = _capacity_context(request, form)
    except RangeError as exc:
        return _range_refused(request, exc)
    if form.cleaned_data["format"] == "csv":
        return _capacity_csv(ctx, form.cleaned_data["table"] or "groups")
    return render(request, "capacity/capacity.html", ctx)


@page_view
def capacity_report(request: HttpRequest) -> HttpResponse:
    form = CapacityForm(request.GET)
    if not form.is_valid():
        return _bad_request(request, form)
    try:
        ctx = _capacity_context(request, form)
    except RangeError as exc:
        return _range_refused(request, exc)
    if form.cleaned_data["format"] == "csv":
        return _capacity_csv(ctx, form.cleaned_data["table"] or "groups")
    correlation = sel.correlation_report(ctx["window"])
    ctx.update({"correlation": correlation, "printable": True})
    return render(request, "capacity/report.html", ctx)
