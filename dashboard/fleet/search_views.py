"""The top bar's search (GET /search/?q=...) and a runbook's recent jobs (GET /search/?runbook=...).

``q`` is untrusted: stripped, at most ``QUERY_MAX`` characters and no control characters (PostgreSQL
refuses NUL in a string), else a 400 page; it reaches the database only as an ORM parameter. An exact
job id or a worker name that matches exactly one live worker redirects straight to its page.
"""
from __future__ import annotations

import unicodedata

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from dashboard.auth import page_view
from workers.fleet.selectors import search as sel

RUNBOOK_MAX = 260


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "dashboard/bad_request.html", {"message": message}, status=400)


def clean_text(raw: str, *, limit: int, name: str) -> tuple[str, str]:
    """(``raw`` stripped, "") or ("", why it is refused)."""
    text = raw.strip()
    if len(text) > limit:
        return "", f"{name} is too long: at most {limit} characters."
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        return "", f"{name} contains control characters."
    return text, ""


def job_url(job: sel.JobHit) -> str:
    return reverse("job-detail", args=[job.job_id]) + "?" + urlencode({"account": job.account_id})


@page_view
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    runbook_raw = request.GET.get("runbook")
    if runbook_raw is not None:
        runbook, error = clean_text(runbook_raw, limit=RUNBOOK_MAX, name="runbook")
        if error or not runbook:
            return _bad_request(request, error or "runbook is empty.")
        return render(request, "dashboard/search.html", {
            "nav_section": "", "now": now, "runbook": runbook,
            "runbook_jobs": sel.runbook_jobs(runbook, now=now),
            "runbook_caption": f"Latest {sel.RUNBOOK_JOBS_LIMIT} jobs of this runbook in the last {sel.RUNBOOK_JOBS_DAYS} days",
            "runbook_empty": f"of this runbook in the last {sel.RUNBOOK_JOBS_DAYS} days",
        })
    query, error = clean_text(request.GET.get("q", ""), limit=sel.QUERY_MAX, name="The search")
    if error:
        return _bad_request(request, error)
    results = sel.search(query, now=now)
    if results.exact_job is not None:
        return HttpResponseRedirect(job_url(results.exact_job))
    if results.exact_worker is not None:
        return HttpResponseRedirect(reverse("worker-detail", args=[results.exact_worker.id]))
    return render(request, "dashboard/search.html", {
        "nav_section": "", "now": now, "q": query, "search_query": query, "results": results,
        "job_prefix_min": sel.JOB_PREFIX_MIN, "job_prefix_days": sel.JOB_PREFIX_DAYS,
    })
