"""The job page (GET /jobs/<Azure job id>/) and the CSV downloads of the jobs list and the overview.

A job is found by Azure's job id, its natural key with the account (``?account=<id>`` picks one
when several accounts share an id). Everything shown comes from Azure and is escaped by the
templates; the CSVs go through ``dashboard.csv_export`` (formula neutralisation).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard.auth import page_view
from dashboard.csv_export import csv_response
from dashboard.fleet.forms import JobFilterForm
from workers.fleet import selectors
from workers.fleet.job_streams import read_job_streams
from workers.fleet.selectors import job as job_sel

JOB_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@page_view
@require_GET
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    if not JOB_ID.match(job_id):
        raise Http404("No such job.")
    raw_account = request.GET.get("account", "")
    account_id: int | None = None
    if raw_account:
        if not raw_account.isdigit() or len(raw_account) > 18:
            raise Http404("No such job in that account.")
        account_id = int(raw_account)
    found = job_sel.find_jobs(job_id, account_id=account_id)
    if not found:
        raise Http404("No such job: it may be older than the retention or not polled yet.")
    now = timezone.now()
    view = found[0] if len(found) == 1 else None
    # Streams are read from Azure only when asked for (?streams=1): one ARM read per request at most.
    streams = read_job_streams(view.job) if view is not None and request.GET.get("streams") == "1" else None
    return render(request, "dashboard/job_detail.html", {
        "nav_section": "jobs", "now": now, "job_id": job_id, "found": found, "view": view, "streams": streams,
    })


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


JOBS_CSV_HEADER = [
    "job_id", "runbook", "status", "group", "run_on", "account", "worker", "created_at_utc", "started_at_utc",
    "ended_at_utc", "queue_seconds", "duration_seconds", "exception",
]


def _job_rows(rows: Iterable[tuple[Any, ...]]) -> Iterable[Sequence[Any]]:
    for row in rows:
        *head, queue, duration, exception = row
        yield [*head, _r(queue), _r(duration), exception]


@page_view
@require_GET
def jobs_csv(request: HttpRequest) -> HttpResponseBase:
    """The jobs list's filters (group, status, since), every matching job up to EXPORT_MAX_ROWS."""
    form = JobFilterForm(request.GET, group_choices=selectors.group_choices())
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(map(str, errs))}" for field, errs in form.errors.items())
        return render(request, "dashboard/bad_request.html", {"message": errors}, status=400)
    data = form.cleaned_data
    group = data.get("group")
    rows = job_sel.jobs_for_export(group_ids=[group] if group else None, status=data.get("status") or None,
                                   since=data.get("since"))
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return csv_response(f"jobs-{stamp}.csv", JOBS_CSV_HEADER, _job_rows(rows))


OVERVIEW_CSV_HEADER = [
    "account", "group", "group_id", "group_type", "health", "online", "total", "late", "offline", "never_reported",
    "v1_workers", "flags", "jobs_24h_completed", "jobs_24h_failed", "jobs_24h_stopped", "jobs_24h_suspended",
    "jobs_24h_other", "queue_p95_seconds_24h", "worker_poll_problem",
]


@page_view
@require_GET
def overview_csv(request: HttpRequest) -> HttpResponseBase:
    """The overview's group table, worst first, as the page shows it."""
    now = timezone.now()
    fleet = selectors.fleet_overview(now=now, version=selectors.jobs_data_version())

    def rows() -> Iterable[Sequence[Any]]:
        for g in fleet.groups:
            m, o = g.members, g.jobs_24h
            yield [g.account, g.name, g.id, g.group_type, g.health, m.online, m.total, m.late, m.offline, m.never, m.v1,
                   " ".join(g.flags), o["completed"], o["failed"], o["stopped"], o["suspended"], o["other"],
                   _r(g.queue_p95_seconds_24h), g.poll_problem]

    return csv_response(f"overview-{now.strftime('%Y%m%dT%H%M%SZ')}.csv", OVERVIEW_CSV_HEADER, rows())
