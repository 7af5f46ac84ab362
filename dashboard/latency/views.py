"""Latency and timeouts pages, the thresholds editor and the latency API.

Thin views: validate a form -> one selector call -> charts_latency -> render (or CSV). Every table
on the pages has a ``?format=csv&table=...`` export with the same window.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.auth import api_view, page_view, requires
from dashboard.csv_export import csv_response
from dashboard.latency import charts as charts_latency
from dashboard.latency.forms import DeleteThresholdForm, LatencyQueryForm, ThresholdForm, TimeoutQueryForm
from dashboard.ranges import Picker, RangeError, picker_context, range_from_request
from workers.latency import selectors as sel
from workers.latency.thresholds import delete_threshold, set_threshold
from workers.rules import latency

API_MAX_PARAM = 260


def _form_errors(form: forms.Form) -> str:
    return "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in form.errors.items())


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "dashboard/bad_request.html", {"message": message}, status=400)


# --- CSV tables -----------------------------------------------------------------------------------

_STATS_HEADER = [
    "name", "account", "window", "window_start_utc", "jobs", "completed", "failed", "stopped", "suspended", "other",
    "not_available", "queue_p50_seconds", "queue_p95_seconds", "queue_p99_seconds", "queue_mean_seconds",
    "duration_p50_seconds", "duration_p95_seconds", "duration_p99_seconds", "duration_mean_seconds", "resolution",
]


def _stats_rows(stats: Iterable[sel.LatencyStats], span: sel.WindowSpan) -> Iterable[Sequence[Any]]:
    for s in stats:
        yield [
            s.label, s.account, span.key, span.start, s.jobs, s.counts["completed"], s.counts["failed"],
            s.counts["stopped"], s.counts["suspended"], s.counts["other"], s.not_available,
            *s.queue.as_dict().values(), _r(s.queue_mean), *s.duration.as_dict().values(), _r(s.duration_mean),
            span.resolution,
        ]


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_JOB_HEADER = [
    "job_id", "runbook", "status", "group", "account", "created_at_utc", "started_at_utc", "ended_at_utc",
    "queue_seconds", "duration_seconds", "age_seconds", "over", "threshold_seconds", "exception",
]


def _job_rows(rows: Iterable[sel.JobRow]) -> Iterable[Sequence[Any]]:
    for j in rows:
        yield [j.job_id, j.runbook, j.status, j.group, j.account, j.created_at, j.started_at, j.ended_at,
               _r(j.queue_seconds), _r(j.duration_seconds), _r(j.age_seconds), j.kind, j.threshold_seconds, j.exception]


def _latency_csv(report: sel.LatencyReport, table: str) -> HttpResponseBase:
    name = f"latency-{table}-{report.span.key}.csv"
    if table == "queued":
        return csv_response(name, _JOB_HEADER, _job_rows(report.queued.jobs))
    stats = {"groups": report.by_group, "runbooks": report.by_runbook, "workers": report.by_worker,
             "summary": [report.summary]}[table]
    return csv_response(name, _STATS_HEADER, _stats_rows(stats, report.span))


# --- pages ----------------------------------------------------------------------------------------

def _span(request: HttpRequest) -> tuple[sel.WindowSpan, Picker]:
    """The page's range as a ``WindowSpan``: a named window exactly as before (``?window=1h|24h|7d|30d``),
    else (6h, ``from``/``to``) a span read raw up to 6 h, from hourly rollups up to 7 d, daily beyond.
    Raises ``RangeError``."""
    rng = range_from_request(request, now=timezone.now())
    if rng.preset in latency.WINDOWS:
        span = sel.resolve_window(rng.preset, now=rng.end)
    else:
        span = sel.span_between(rng.start, rng.end, key=rng.preset or "custom", text=rng.label)
    return span, picker_context(request, rng, resolution=span.resolution)


def _range_query(span: sel.WindowSpan) -> dict[str, str]:
    """What the CSV links need to ask for the same range."""
    if span.key != "custom":
        return {"window": span.key, "range_from": "", "range_to": ""}
    return {"window": "", "range_from": f"{span.start:%Y-%m-%dT%H:%MZ}", "range_to": f"{span.end:%Y-%m-%dT%H:%MZ}"}

@page_view
@require_GET
def latency_page(request: HttpRequest) -> HttpResponseBase:
    form = LatencyQueryForm(request.GET)
    if not form.is_valid():
        return _bad_request(request, _form_errors(form))
    try:
        window, picker = _span(request)
    except RangeError as exc:
        return _bad_request(request, str(exc))
    as_csv = form.cleaned_data["format"] == "csv"
    report = sel.latency_report(window, now=timezone.now(), list_limit=None if as_csv else sel.DEFAULT_LIST_LIMIT, shared=True)
    if as_csv:
        return _latency_csv(report, form.cleaned_data["table"] or "groups")
    span = report.span
    figures = {
        "trend": charts_latency.trend_figure(report.trend, step=span.trend_step, window_label=span.label,
                                             x_range=(span.start, span.end)),
        "queue_hist": charts_latency.histogram_figure(report.summary.queue_hist, title=f"Queue delay, {span.label}"),
        "duration_hist": charts_latency.histogram_figure(
            report.summary.duration_hist, title=f"Duration, {span.label}", color=charts_latency.ORANGE
        ),
    }
    return render(request, "latency/latency.html", {
        "nav_section": "latency", "report": report, "span": span, "figures": figures,
        "picker": picker, **_range_query(span), "list_limit": sel.DEFAULT_LIST_LIMIT,
    })


def _timeouts_csv(report: sel.TimeoutReport, table: str) -> HttpResponseBase:
    name = f"timeouts-{table}-{report.span.key}.csv"
    if table == "thresholds":
        return csv_response(name, ["runbook", "max_queue_seconds", "max_run_seconds", "is_default"],
                            ([t.runbook, t.max_queue_seconds, t.max_run_seconds, t.is_default] for t in report.threshold_rows))
    rows = {"now": report.over_now, "past": report.over_past.rows, "suspended": report.suspended_stopped.rows,
            "not_available": report.not_available.rows}[table]
    return csv_response(name, _JOB_HEADER, _job_rows(rows))


@page_view
@require_GET
def timeouts_page(request: HttpRequest) -> HttpResponseBase:
    form = TimeoutQueryForm(request.GET)
    if not form.is_valid():
        return _bad_request(request, _form_errors(form))
    try:
        window, picker = _span(request)
    except RangeError as exc:
        return _bad_request(request, str(exc))
    as_csv = form.cleaned_data["format"] == "csv"
    report = sel.timeout_report(window, now=timezone.now(), list_limit=None if as_csv else sel.DEFAULT_LIST_LIMIT, shared=True)
    if as_csv:
        return _timeouts_csv(report, form.cleaned_data["table"] or "now")
    return render(request, "latency/timeouts.html", {
        "nav_section": "timeouts", "report": report, "span": report.span, "picker": picker,
        **_range_query(report.span), "list_limit": sel.DEFAULT_LIST_LIMIT,
    })


@page_view
@require_http_methods(["GET", "HEAD", "POST"])
@requires("dashboard.manage_thresholds")
def thresholds_page(request: HttpRequest) -> HttpResponse:
    """List and edit thresholds. Everyone logged in reads; a POST needs the operator role."""
    form = ThresholdForm()
    status = 200
    if request.method == "POST":
        if request.POST.get("action") == "delete":
            delete_form = DeleteThresholdForm(request.POST)
            if delete_form.is_valid():
                runbook = delete_form.cleaned_data["runbook"]
                if delete_threshold(runbook=runbook):
                    messages.success(request, f"Threshold for {runbook} removed.")
                return redirect("thresholds")
            return _bad_request(request, _form_errors(delete_form))
        form = ThresholdForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            set_threshold(runbook=data["runbook"], max_queue_seconds=data["max_queue_minutes"] * 60,
                          max_run_seconds=data["max_run_minutes"] * 60)
            messages.success(request, f"Threshold for {data['runbook']} saved.")
            return redirect("thresholds")
        status = 400
    _tset, rows = sel.thresholds()
    return render(request, "latency/thresholds.html", {
        "nav_section": "timeouts", "form": form, "thresholds": rows,
        "default_queue": latency.DEFAULT_MAX_QUEUE_SECONDS, "default_run": latency.DEFAULT_MAX_RUN_SECONDS,
    }, status=status)


# --- API ------------------------------------------------------------------------------------------

def _api_error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@api_view
@require_GET
def api_latency(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/jobs/latency?group=&account=&runbook=&window=24h: percentiles and counts."""
    known = {"group", "account", "runbook", "window", "token"}
    unknown = sorted(set(request.GET) - known)
    if unknown:
        return _api_error(f"unknown parameter(s): {', '.join(unknown)}; use group, account, runbook, window")
    raw_window = request.GET.get("window")
    if raw_window is not None and not raw_window.strip():
        return _api_error(f"window must be one of {', '.join(latency.WINDOWS)}")
    try:
        window = sel.parse_window(raw_window)
    except sel.WindowError as exc:
        return _api_error(str(exc))
    params: dict[str, str | None] = {}
    for name in ("group", "account", "runbook"):
        raw = request.GET.get(name)
        if raw is not None and (raw.strip() == "" or len(raw) > API_MAX_PARAM or any(ord(c) < 32 for c in raw)):
            return _api_error(f"{name} must be a non-empty name of at most {API_MAX_PARAM} printable characters")
        params[name] = raw.strip() if raw is not None else None
    if params["account"] and not params["group"]:
        return _api_error("account is only meaningful together with group")
    group = None
    if params["group"]:
        try:
            group = sel.find_group(params["group"], params["account"])
        except sel.GroupNotFound:
            return _api_error(f"unknown group {params['group']!r}", status=404)
        except sel.AmbiguousGroup as exc:
            return _api_error(str(exc))
    now = timezone.now()
    span, stats = sel.latency_summary(window, now=now, group_id=group.pk if group else None, runbook=params["runbook"])
    queued = sel.queued_now(now=now, group_id=group.pk if group else None, runbook=params["runbook"], limit=0)
    return JsonResponse({
        "window": span.key,
        "window_start": span.start.isoformat(),
        "window_end": span.end.isoformat(),
        "group": group.name if group else None,
        "account": group.account.name if group else None,
        "runbook": params["runbook"],
        "queue_seconds": stats.queue.as_dict(),
        "duration_seconds": stats.duration.as_dict(),
        "counts": {**stats.counts, "total": stats.jobs},
        "not_available": stats.not_available,
        "jobs_with_queue_delay": stats.queue_n,
        "jobs_with_duration": stats.duration_n,
        "queued_now": queued.count,
        "oldest_queued_seconds": None if queued.oldest_seconds is None else round(queued.oldest_seconds, 3),
        "exact": span.exact or stats.exact,
        "resolution": latency.EXACT_TEXT if (span.exact or stats.exact) else latency.RESOLUTION_TEXT,
    })
