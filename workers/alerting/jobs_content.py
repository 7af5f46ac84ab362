"""What a ``jobs_failing`` email says: the group's failing jobs, the cause and its fix per platform.

The cause and fix are each member's own diagnosis (``content.worker_snapshot``: the rule and the
remedies the worker page shows, per worker type and OS), kept to the causes the jobs name
(managed identity missing, job limit), each fix listed once with the members it applies to. Read
only, like ``workers.alerting.content``; rendered once when the email is queued.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from workers.alerting import content
from workers.alerting.content import RenderedEmail
from workers.models import Alert, AlertMember, Job
from workers.rules.diagnosis import JOB_EVIDENCE_WINDOW
from workers.rules.format import format_duration

JOB_CAUSES = ("identity_missing", "job_limit")
RECENT_JOBS_SHOWN = 5


def _advice(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each job-named cause with its fix once, with the members it applies to (fixes differ by OS/type)."""
    entries: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        snapshot = row["snapshot"]
        found = ([snapshot["cause"]] if snapshot["cause"] else []) + list(snapshot["other_causes"])
        for cause in found:
            if cause["code"] not in JOB_CAUSES:
                continue
            key = (cause["title"], cause["detail"], cause["fix"])
            entry = entries.setdefault(key, {"cause": cause, "workers": []})
            entry["workers"].append(row["name"])
    ordered = sorted(entries.values(), key=lambda e: (JOB_CAUSES.index(e["cause"]["code"]), -len(e["workers"])))
    for entry in ordered:
        count = len(entry["workers"])
        entry["applies_to"] = f"all {count} workers" if count == len(rows) else f"{count} of {len(rows)}: {', '.join(entry['workers'])}"
    return ordered


def _recent_failures(alert: Alert, *, now: datetime) -> list[dict[str, Any]]:
    if alert.group_id is None:
        return []
    jobs = (
        Job.objects.filter(group_id=alert.group_id, status__in=("Failed", "Suspended"), created_at__gte=now - JOB_EVIDENCE_WINDOW)
        .exclude(exception="")
        .order_by("-created_at")[:RECENT_JOBS_SHOWN]
    )
    return [summary for summary in (content.job_summary(j) for j in jobs) if summary is not None]


def render_jobs_failing(alert: Alert, *, now: datetime, reminder: bool = False, recovered: bool = False) -> RenderedEmail:
    """The opening email of a jobs-failing alert, a reminder, or its recovery (``recovered``)."""
    group = content.group_snapshot(alert.group)
    name = group["name"] if group else "a group"
    members = AlertMember.objects.filter(alert=alert).select_related("worker__group")
    rows = [{"name": m.worker.name, "snapshot": content.worker_snapshot(m.worker, now=now)} for m in members]
    advice = _advice(rows)
    headline = " and ".join(e["cause"]["title"] for e in advice) or "jobs fail with errors that name a cause"
    end = alert.resolved_at or now
    duration = format_duration((end - alert.opened_at).total_seconds())
    if recovered:
        subject = f"RECOVERED jobs of group {name} run again after {duration}: no job failing for a managed identity or the job limit"
    elif reminder:
        subject = f"STILL FAILING jobs of group {name} for {duration} — {headline}"
    else:
        subject = f"FAILING jobs of group {name} — {headline}: {alert.detail}"
    context = {
        "alert": alert, "group": group, "name": name, "advice": advice, "rows": rows, "recovered": recovered,
        "reminder": reminder, "duration": duration, "jobs": [] if recovered else _recent_failures(alert, now=now),
        "now": now, "url": group["url"] if group else content.site_url("/alerts/"),
    }
    return content.render("jobs_failing", context, subject)
