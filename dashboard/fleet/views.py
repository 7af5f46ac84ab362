"""Server-rendered pages. Each view: validate input -> selector -> chart -> render."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard.auth import page_view
from dashboard.fleet import charts
from dashboard.fleet.forms import JobFilterForm
from dashboard.ranges import RangeError, TimeRange, picker_context, range_from_request
from workers.alerting.selectors import open_alert_rows
from workers.fleet import selectors
from workers.latency.selectors import timeout_counts
from workers.models import SignalSource
from workers.rules.diagnosis import worker_diagnoses
from workers.rules.pressure import PressureLimits
from workers.rules.signals import Thresholds, tolerance


def bad_request(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "dashboard/bad_request.html", {"message": message}, status=400)


def is_partial(request: HttpRequest) -> bool:
    """``?partial=1``: static/js/live.js re-fetching the page to swap its ``data-live-part`` pieces
    (same template, same context; charts are skipped since they are not swapped)."""
    return request.GET.get("partial") == "1"


def live_render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """``render``, never cached when it answers a live page's poll."""
    response = render(request, template, context, status=status)
    if is_partial(request):
        response["Cache-Control"] = "no-store"
    return response


@page_view
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    freshness = selectors.data_freshness(now=now)
    version = selectors.jobs_data_version()
    fleet = selectors.fleet_overview(now=now, version=version)
    timeouts = timeout_counts("24h", now=now, version=version)
    limits = PressureLimits.from_settings()
    return live_render(request, "dashboard/overview.html", {
        "nav_section": "overview", "now": now, "freshness": freshness, "fleet": fleet, "timeouts": timeouts,
        "open_alerts": open_alert_rows(now=now), "pressure": selectors.pressure_workers(now=now, limits=limits),
        "pressure_limits": limits,
    })


@page_view
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    now = timezone.now()
    try:
        rng = range_from_request(request, now=now)
    except RangeError as exc:
        return bad_request(request, str(exc))
    custom = rng.is_custom or rng.preset != "24h"
    detail = selectors.group_detail(group_id=group_id, now=now, start=rng.start, end=rng.end if custom else None)
    if detail is None:
        raise Http404("No such worker group (it may have been removed from Azure).")
    figures = {}
    for member in [] if is_partial(request) else detail.members:
        points = detail.utilization.get(member.pk, [])
        if points:
            figures[f"cpu-{member.pk}"] = charts.sparkline(points, metric="cpu")
            figures[f"mem-{member.pk}"] = charts.sparkline(points, metric="mem")
    return live_render(request, "dashboard/group_detail.html", {
        "nav_section": "overview", "now": now, "detail": detail, "group": detail.group, "figures": figures,
        "range_label": rng.label, "picker": picker_context(
            request, rng, resolution="jobs and hourly CPU/memory averages over the range",
        ),
        "freshness": selectors.data_freshness(now=now, account_ids=[detail.group.account_id], group_name=detail.group.name),
    })


@page_view
def worker_detail(request: HttpRequest, worker_id: int) -> HttpResponse:
    now = timezone.now()
    try:
        rng = range_from_request(request, now=now)
    except RangeError as exc:
        return bad_request(request, str(exc))
    hourly = rng.resolution() == "hourly"
    if rng.preset in selectors.WORKER_WINDOWS:  # 24h and 7d: the rows these pages always read
        detail = selectors.worker_detail(worker_id=worker_id, now=now, window=rng.preset)
    else:
        detail = selectors.worker_detail(worker_id=worker_id, now=now, start=rng.start, end=rng.end, hourly=hourly)
    if detail is None:
        raise Http404("No such hybrid worker.")
    label = rng.label
    grace = detail.worker.group.grace_seconds
    figures = {} if is_partial(request) else _worker_figures(detail, rng=rng, hourly=hourly, grace=grace)
    return live_render(request, "dashboard/worker_detail.html", {
        "nav_section": "overview", "now": now, "detail": detail, "worker": detail.worker, "window": rng.preset or "custom",
        "window_label": label, "figures": figures, "hourly": hourly,
        "picker": picker_context(request, rng, resolution=detail.utilization_resolution),
        "causes": worker_diagnoses(
            detail.worker, now=now, thresholds=Thresholds.from_settings().with_grace(grace), pressure=PressureLimits.from_settings(),
            recent_jobs=detail.group_jobs,
        ),
        "alerts": open_alert_rows(now=now, worker_id=detail.worker.pk),
        "freshness": selectors.data_freshness(
            now=now, account_ids=[detail.worker.group.account_id], group_name=detail.worker.group.name
        ),
    })


def _worker_figures(detail: selectors.WorkerDetail, *, rng: TimeRange, hourly: bool, grace: int | None) -> dict[str, Any]:
    util_figure = charts.utilization_chart(detail.utilization, window_label=rng.label, resolution=detail.utilization_resolution)
    timeline = charts.signal_timeline(
        spans=detail.spans,
        sample_times=detail.sample_times,
        changes=[(c.created_at, c.old_status, c.new_status, c.reason) for c in detail.changes],
        since=rng.start, now=rng.end, step=timedelta(hours=1) if hourly else timedelta(minutes=1),
        tolerances={source: tolerance(source, grace).total_seconds() for source in SignalSource.values},
        window_label=rng.label,
    )
    return {"util": util_figure, "timeline": timeline}


def _page_url(request: HttpRequest, number: int) -> str:
    query = request.GET.copy()
    query.pop("token", None)
    query["page"] = str(number)
    return f"{request.path}?{query.urlencode()}"


@page_view
def jobs(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    form = JobFilterForm(request.GET or None, group_choices=selectors.group_choices())
    page = None
    status = 200
    if request.GET and not form.is_valid():
        status = 400
    else:
        data = form.cleaned_data if request.GET else {}
        group = data.get("group")
        page = selectors.jobs_page(
            group_ids=[group] if group else None, status=data.get("status") or None, since=data.get("since"),
            page=data.get("page") or 1, page_size=50,
        )
    return render(request, "dashboard/jobs.html", {
        "nav_section": "jobs", "now": now, "form": form, "page": page,
        "prev_url": _page_url(request, page.page - 1) if page and page.page > 1 else None,
        "next_url": _page_url(request, page.page + 1) if page and page.has_next else None,
        "freshness": selectors.data_freshness(now=now),
    }, status=status)
