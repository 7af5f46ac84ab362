"""The JSON API (v1). Field names are stable and documented in the README; times are ISO 8601 UTC."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard import health
from dashboard import metrics as prom
from dashboard.auth import api_view
from dashboard.fleet.forms import ApiJobsForm, ApiWorkersForm, first_error
from workers.fleet import selectors
from workers.models import HybridWorker, Job
from workers.rules.outcomes import outcome


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@require_GET
@api_view
def groups(request: HttpRequest) -> JsonResponse:
    now = timezone.now()
    _fleet, by_account = selectors.freshness_by_account(now=now)
    overview = selectors.fleet_overview(now=now)
    items = []
    for g in overview.groups:
        fresh = by_account.get(g.account_id)
        items.append({
            "id": g.id, "name": g.name, "account": g.account, "group_type": g.group_type, "health": g.health,
            "workers_total": g.members.total, "workers_online": g.members.online, "workers_late": g.members.late,
            "workers_offline": g.members.offline, "single_member": g.single_member, "flags": g.flags,
            "jobs_24h": g.jobs_24h, "queue_p95_seconds_24h": _round(g.queue_p95_seconds_24h),
            "data_age_seconds": round(fresh.age_seconds) if fresh and fresh.age_seconds is not None else None,
            "stale": (fresh.stale if fresh else True) or bool(g.poll_problem),
            "poll_problem": g.poll_problem or None,
        })
    return JsonResponse({"groups": items, "generated_at": _iso(now)})


def _worker_json(w: HybridWorker) -> dict[str, Any]:
    return {
        "id": w.pk, "name": w.name, "group": w.group.name, "account": w.group.account.name, "status": w.status,
        "status_reason": w.status_reason, "last_seen": _iso(w.last_seen_at), "last_heartbeat": _iso(w.last_heartbeat_at),
        "worker_type": w.worker_type, "os_type": w.os_type, "agent_version": w.agent_version,
        "cpu_pct": _round(w.cpu_pct), "mem_pct": _round(w.mem_pct), "utilization_at": _iso(w.utilization_at),
    }


@require_GET
@api_view
def workers(request: HttpRequest) -> JsonResponse:
    form = ApiWorkersForm(request.GET)
    if not form.is_valid():
        return error(first_error(form))
    found = selectors.find_groups(name=form.cleaned_data["group"], account=form.cleaned_data["account"] or None)
    if not found:
        return error("unknown group", status=404)
    members = selectors.workers_in_groups([g.pk for g in found])
    return JsonResponse({"workers": [_worker_json(w) for w in members]})


def _job_json(j: Job) -> dict[str, Any]:
    return {
        "job_id": j.job_id, "runbook": j.runbook, "status": j.status, "outcome": outcome(j.status),
        "group": j.group.name if j.group else None, "account": j.account.name, "run_on": j.run_on,
        "created_at": _iso(j.created_at), "started_at": _iso(j.started_at), "ended_at": _iso(j.ended_at),
        "queue_seconds": _round(j.queue_seconds), "duration_seconds": _round(j.duration_seconds),
    }


@require_GET
@api_view
def jobs(request: HttpRequest) -> JsonResponse:
    form = ApiJobsForm(request.GET)
    if not form.is_valid():
        return error(first_error(form))
    data = form.cleaned_data
    group_ids = None
    if data["group"]:
        found = selectors.find_groups(name=data["group"], account=data["account"] or None)
        if not found:
            return error("unknown group", status=404)
        group_ids = [g.pk for g in found]
    page_size = data["page_size"] or 50
    page = selectors.jobs_page(
        group_ids=group_ids, status=data["status"] or None, since=data["since"], page=data["page"] or 1, page_size=page_size,
    )
    next_url = None
    if page.has_next:
        query = {k: v for k, v in request.GET.items() if k not in ("page", "token")}
        query["page"] = str(page.page + 1)
        next_url = f"{request.path}?{urlencode(query)}"
    return JsonResponse({
        "jobs": [_job_json(j) for j in page.jobs], "page": page.page, "page_size": page.page_size,
        "total": page.total, "total_capped": page.total_capped, "next": next_url,
    })


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitors. No login, no secrets: each part ok/error and one age.

    200 while the database answers (this process can serve pages), with ``status`` "degraded" and
    the parts in ``down`` when the cache, the broker or polling is not well; 503 when the database
    is unreachable.
    """
    h = health.check_all()
    return JsonResponse({
        "status": h.status,
        "database": "ok" if h.database else "error",
        "cache": "ok" if h.cache else "error",
        "broker": "ok" if h.broker else "error",
        "polling": h.polling,
        "last_poll_age_seconds": None if h.last_poll_age_seconds is None else round(h.last_poll_age_seconds),
        "max_poll_age_seconds": h.max_poll_age_seconds,
        "down": h.down,
    }, status=200 if h.database else 503)


@require_GET
@api_view
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text (dashboard/metrics.py, documented in docs/metrics.md)."""
    return HttpResponse(prom.render(), content_type=prom.CONTENT_TYPE)
