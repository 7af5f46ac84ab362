"""What an alert email says: the context for templates/emails/* and the rendered subject and bodies.

Everything here is read-only: it looks at stored workers, groups, jobs and the health rules, and
returns text. Emails are rendered once, when a notification is queued, and stored on the
``Notification`` row, so a retry sends exactly what was first rendered. Strings from Azure (worker,
group, runbook names, exceptions) reach the HTML part only through Django's autoescaping; the text
part is plain text; the subject has its line breaks removed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from workers.alerting.pressure import group_queue_delay, pressure_stats
from workers.fleet.selectors.last_looked import LastLooked
from workers.models import Alert, AlertKind, AlertMember, AlertState, HybridWorker, Job, SignalSource, WorkerGroup, WorkerStatus
from workers.rules.diagnosis import JOB_EVIDENCE_WINDOW, diagnoses, job_evidence, worker_signals
from workers.rules.format import format_duration
from workers.rules.health import is_v1_worker, possible_site_outage, summarize_members, worker_status
from workers.rules.pressure import PressureLimits
from workers.rules.signals import Thresholds

# "Automation lastSeenDateTime", "Log Analytics Heartbeat": the stored signals' own labels.
SIGNAL_LABELS = dict(SignalSource.choices)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def clean_subject(subject: str) -> str:
    """One line, at most 200 characters (an Azure name with a newline must not break the header)."""
    one_line = " ".join(subject.split())
    return one_line if len(one_line) <= 200 else one_line[:199] + "…"


def site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def worker_verdict(worker: HybridWorker, *, now: datetime, looked: LastLooked | None = None) -> Any:
    """The worker's verdict at ``now``; with ``looked``, each signal is judged as of our last successful
    poll of it, as the status refresh does (our own polling gap is never the worker's outage)."""
    grace = worker.group.grace_seconds if worker.group_id else None
    return worker_status(
        now=now,
        last_seen_at=worker.last_seen_at,
        last_heartbeat_at=worker.last_heartbeat_at,
        registered_at=worker.registered_at,
        thresholds=Thresholds.from_settings().with_grace(grace),
        automation_checked_at=looked.automation if looked else None,
        heartbeat_checked_at=looked.heartbeat if looked else None,
        last_ping_at=worker.last_ping_at,
        ping_checked_at=looked.ping if looked else None,
    )


def worker_snapshot(worker: HybridWorker, *, now: datetime) -> dict[str, Any]:
    """Signals (stale and fresh, with ages), the probable cause and its fix, and the worker's last job."""
    verdict = worker_verdict(worker, now=now)
    signals = []
    for signal in verdict.signals:
        signals.append(
            {
                "name": signal.name,
                "label": SIGNAL_LABELS.get(signal.name, signal.name),
                "at": signal.at.isoformat() if signal.at else None,
                "age": format_duration(signal.age_seconds) if signal.age_seconds is not None else None,
                "state": signal.state,
                "fresh": signal.state == "fresh",
            }
        )
    # The group's jobs of the evidence window: auth failures (managed identity) and job-limit suspensions.
    recent = Job.objects.filter(group_id=worker.group_id, created_at__gte=now - JOB_EVIDENCE_WINDOW, created_at__lte=now)
    evidence = job_evidence(recent.only("status", "exception", "created_at"), now=now)
    found = diagnoses(
        verdict=verdict, now=now, pressure=PressureLimits.from_settings(), **worker_signals(worker, jobs=evidence)
    )
    # Most specific first (health.diagnose returns found[0]); the others are listed after it.
    cause = found[0] if found else None
    last_job = Job.objects.filter(worker=worker).order_by("-created_at").first()
    return {
        "worker_id": worker.pk,
        "name": worker.name,
        "status": worker.status,
        "reason": verdict.reason,
        "signals": signals,
        "stale": [s["label"] for s in signals if s["state"] in {"late", "offline"}],
        "fresh": [s["label"] for s in signals if s["state"] == "fresh"],
        "cause": asdict(cause) if cause else None,
        "other_causes": [asdict(d) for d in found if cause is None or d.code != cause.code],
        "event_4502_count": worker.event_4502_count,
        "cpu_pct": worker.cpu_pct,
        "mem_pct": worker.mem_pct,
        "worker_type": worker.worker_type,
        "v1": is_v1_worker(worker.worker_type),
        "os_type": worker.os_type,
        "machine_status": worker.machine_status,
        "extension_state": worker.extension_state,
        "last_job": job_summary(last_job),
        "url": site_url(f"/workers/{worker.pk}/"),
    }


def job_summary(job: Job | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {
        "runbook": job.runbook,
        "status": job.status,
        "created_at": job.created_at.isoformat(),
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
        "exception": job.exception[:300],
    }


def group_snapshot(group: WorkerGroup | None) -> dict[str, Any] | None:
    """"2 of 3 workers online", or the warning that queued jobs will fail, and the group's last job."""
    if group is None:
        return None
    members = HybridWorker.objects.filter(group=group, removed_at__isnull=True).values_list("status", "worker_type")
    summary = summarize_members(members)  # V1 members never count as online capacity
    # summary.health is the one group rule: no member online is "down" whether they are late or offline.
    if summary.total and summary.online == 0 and summary.late == 0:
        meaning = "the group has NO online worker: queued jobs will fail"
    elif summary.total and summary.online == 0:
        meaning = f"the group is DOWN: no worker is fully online ({summary.late} late): jobs may be delayed or fail"
    elif summary.online < summary.total:
        meaning = f"{summary.label}: jobs still run on the remaining workers, with less capacity"
    else:
        meaning = f"{summary.label}"
    last_job = Job.objects.filter(group=group).order_by("-created_at").first()
    return {
        "name": group.name,
        "online": summary.online,
        "total": summary.total,
        "label": summary.label,
        # "1 of 3 online", plus the late ones (reporting again, a signal still catching up).
        "short": f"{summary.online} of {summary.total} online" + (f", {summary.late} late" if summary.late else "")
        + (f", {summary.v1} V1 not counted" if summary.v1 else ""),
        "late": summary.late,
        "v1": summary.v1,  # V1 (retired) members: counted in total, never online capacity
        "meaning": meaning,
        "no_online": summary.online == 0,
        "health": summary.health,
        "last_job": job_summary(last_job),
        "url": site_url(f"/groups/{group.pk}/"),
    }


def _member_rows(alert: Alert, *, now: datetime) -> list[dict[str, Any]]:
    rows = []
    members = AlertMember.objects.filter(alert=alert).select_related("worker__group")
    for member in members:
        end = member.recovered_at or now
        rows.append(
            {
                "name": member.worker.name,
                "down_at": member.down_at,
                "recovered_at": member.recovered_at,
                "outage": format_duration((end - member.down_at).total_seconds()),
                "snapshot": worker_snapshot(member.worker, now=now),
            }
        )
    return rows


def _advice(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each distinct cause and fix once, with the workers it applies to: members that went dark
    together usually share one cause, and seven identical blocks of advice hide that. Causes that
    are some worker's most likely one come first, then by how many workers they cover."""
    entries: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        snapshot = row["snapshot"]
        found = ([snapshot["cause"]] if snapshot["cause"] else []) + list(snapshot["other_causes"])
        for index, cause in enumerate(found or [None]):
            key = (cause["title"], cause["detail"], cause["fix"]) if cause else ("", "", "")
            entry = entries.setdefault(key, {"cause": cause, "workers": [], "probable": False})
            entry["workers"].append(row["name"])
            entry["probable"] = entry["probable"] or index == 0
    ordered = sorted(entries.values(), key=lambda e: (not e["probable"], -len(e["workers"])))
    for entry in ordered:
        count = len(entry["workers"])
        entry["applies_to"] = (
            f"all {count} workers" if count == len(rows) else f"{count} of {len(rows)}: {', '.join(entry['workers'])}"
        )
    return ordered


def _site_outage(alert: Alert, down: list[dict[str, Any]], group: dict[str, Any] | None) -> dict[str, Any] | None:
    """"Possible site or network outage" facts when most of the group went dark within one group
    wait (the members of one rollup alert; ``health.possible_site_outage``), else None."""
    if group is None or alert.kind != AlertKind.GROUP_ROLLUP:
        return None
    if not possible_site_outage(down_together=len(down), total=group["total"], share=settings.ALERT_SITE_OUTAGE_SHARE):
        return None
    starts = [r["down_at"] for r in down]
    return {"down": len(down), "total": group["total"], "first": min(starts), "last": max(starts)}


def _headline_cause(rows: list[dict[str, Any]]) -> str:
    causes = [r["snapshot"]["cause"]["title"] for r in rows if r["snapshot"]["cause"]]
    if not causes:
        return "cause unknown"
    first = causes[0]
    return first if all(c == first for c in causes) else f"{first} (and other causes)"


def render(template: str, context: dict[str, Any], subject: str) -> RenderedEmail:
    context = {**context, "site_url": settings.SITE_URL.rstrip("/"), "alerts_url": site_url("/alerts/")}
    return RenderedEmail(
        subject=clean_subject(subject),
        text=render_to_string(f"emails/{template}.txt", context),
        html=render_to_string(f"emails/{template}.html", context),
    )


def render_down(alert: Alert, *, now: datetime, reminder: bool = False) -> RenderedEmail:
    """The opening email (or a reminder) of a worker-down or rollup alert."""
    rows = _member_rows(alert, now=now)
    group = group_snapshot(alert.group)
    down = [r for r in rows if r["recovered_at"] is None]
    prefix = "STILL DOWN" if reminder else "DOWN"
    where = f"group {group['name']}: {group['short']}" if group else "no group"
    listed = down or rows
    if len(listed) == 1:
        who = listed[0]["name"]
    else:
        who = f"{len(listed)} workers ({', '.join(r['name'] for r in listed[:4])}{', …' if len(listed) > 4 else ''})"
    since = ""
    if reminder and listed:
        since = f" for {format_duration((now - min(r['down_at'] for r in listed)).total_seconds())}"
    site = _site_outage(alert, down, group)
    headline = f"possible site or network outage; {_headline_cause(listed)}" if site else _headline_cause(listed)
    subject = f"{prefix} {who}{since} ({where}) — {headline}"
    context = {
        "alert": alert, "rows": rows, "down": down, "group": group, "reminder": reminder, "now": now,
        "site": site, "advice": _advice(listed) if len(rows) > 1 else [],
    }
    return render("down", context, subject)


def render_recovery(alert: Alert, *, now: datetime) -> RenderedEmail:
    rows = _member_rows(alert, now=now)
    group = group_snapshot(alert.group)
    end = alert.resolved_at or now
    outage = format_duration((end - alert.opened_at).total_seconds())
    who = rows[0]["name"] if len(rows) == 1 else f"{len(rows)} workers"
    where = f" (group {group['name']}: {group['short']})" if group else ""
    subject = f"RECOVERED {who} after {outage}{where}"
    return render("recovery", {"alert": alert, "rows": rows, "group": group, "outage": outage, "now": now}, subject)


# The last line of a blind alert's detail: whether worker alerts are held (its email's subject says so).
HELD_NOTE = "Worker alerts are held until this clears."
NOT_HELD_NOTE = "Worker alerts still go out: Automation is still read."


def holds_worker_alerts(detail: str) -> bool:
    return HELD_NOTE in (detail or "")


def render_blind(alert: Alert, *, now: datetime, restored: bool = False) -> RenderedEmail:
    account = alert.account.name if alert.account else "all accounts"
    # Only Automation blindness holds worker alerts (a heartbeat or ping outage alone does not).
    held = holds_worker_alerts(alert.detail)
    if restored:
        outage = format_duration(((alert.resolved_at or now) - alert.opened_at).total_seconds())
        subject = f"RESTORED monitoring of {account} after {outage}" + (" — worker alerts resume" if held else "")
    else:
        outage = format_duration((now - alert.opened_at).total_seconds())
        subject = f"BLIND monitoring of {account} — {alert.title}; " + (
            "worker alerts held until restored" if held else "worker alerts still sent")
    context = {"alert": alert, "account": account, "restored": restored, "outage": outage, "now": now, "held": held}
    return render("blind", context, subject)


def render_flapping(alert: Alert, *, now: datetime, transitions: int, stable: bool = False) -> RenderedEmail:
    member = AlertMember.objects.filter(alert=alert).select_related("worker__group").first()
    worker = member.worker if member else None
    name = worker.name if worker else "a worker"
    group = group_snapshot(alert.group)
    status = worker.status if worker else WorkerStatus.UNKNOWN.value
    if stable:
        subject = f"STABLE {name}: no status change for {settings.FLAP_STABLE_MINUTES} min, now {status}"
    else:
        subject = (
            f"FLAPPING {name}: {transitions} status changes in {settings.FLAP_WINDOW_MINUTES} min — "
            f"its alerts are held until it is stable for {settings.FLAP_STABLE_MINUTES} min"
        )
    snapshot = worker_snapshot(worker, now=now) if worker else None
    context = {
        "alert": alert,
        "name": name,
        "group": group,
        "snapshot": snapshot,
        "transitions": transitions,
        "stable": stable,
        "status": status,
        "window_minutes": settings.FLAP_WINDOW_MINUTES,
        "stable_minutes": settings.FLAP_STABLE_MINUTES,
        "now": now,
    }
    return render("flapping", context, subject)


def render_test(*, now: datetime) -> RenderedEmail:
    return render("test", {"now": now}, "TEST hrw-monitor alert email: SMTP settings work")


def _pressure_context(alert: Alert, *, now: datetime) -> dict[str, Any]:
    """The worker, its CPU/memory over the window, the pressure diagnosis and the group's queue delay."""
    member = AlertMember.objects.filter(alert=alert).select_related("worker__group").first()
    worker = member.worker if member else None
    end = alert.resolved_at or now
    stats = pressure_stats(worker.pk, now=end) if worker else None
    cause = None
    if worker is not None and stats is not None:
        # The sustained values (p50), else the peaks, through the same rule the worker pages use.
        limits = PressureLimits.from_settings()
        for cpu, mem in ((stats.cpu_p50, stats.mem_p50), (stats.cpu_max, stats.mem_max)):
            found = diagnoses(
                verdict=worker_verdict(worker, now=now), now=end, pressure=limits, cpu_pct=cpu, mem_pct=mem, utilization_at=end
            )
            cause = next((d for d in found if d.code == "resource_pressure"), None)
            if cause is not None:
                break
    under = (
        AlertMember.objects.filter(alert__kind=alert.kind, alert__state=AlertState.OPEN, alert__group=alert.group)
        .values("worker_id")
        .distinct()
        .count()
        if alert.group_id
        else 0
    )
    group = group_snapshot(alert.group)
    return {
        "alert": alert,
        "worker": worker,
        "name": worker.name if worker else "a worker",
        "stats": stats,
        "cause": asdict(cause) if cause else None,
        "delay": group_queue_delay(alert.group_id, now=end),
        "group": group,
        "under_pressure": under,
        "cpu_limit": settings.CAPACITY_CPU_PRESSURE_PCT,
        "mem_limit": settings.CAPACITY_MEM_PRESSURE_PCT,
        "url": site_url(f"/workers/{worker.pk}/") if worker else site_url("/alerts/"),
        "duration": format_duration((end - alert.opened_at).total_seconds()),
        "now": now,
    }


def _headline_metric(stats: Any) -> str:
    """The metric that is sustained ("CPU 97 %" or "memory 93 %"), from the window's p50."""
    if stats is None or not stats.samples:
        return "CPU/memory pressure"
    if stats.cpu_p50 is not None and (stats.cpu_high >= stats.mem_high or stats.mem_p50 is None):
        return f"CPU {stats.cpu_p50:.0f} %"
    return f"memory {stats.mem_p50:.0f} %"


def render_pressure(alert: Alert, *, now: datetime, recovered: bool = False) -> RenderedEmail:
    """The opening email of a pressure alert, or its recovery (``recovered``) with the duration."""
    context = _pressure_context(alert, now=now)
    group = context["group"]
    where = f" (group {group['name']})" if group else ""
    if recovered:
        subject = f"RECOVERED {context['name']} from CPU/memory pressure after {context['duration']}{where}"
    else:
        delay = context["delay"]
        effect = "jobs are being delayed" if delay.worse else "jobs may be delayed or time out"
        minutes = context["stats"].minutes if context["stats"] else settings.ALERT_PRESSURE_MINUTES
        subject = f"PRESSURE {context['name']}{where} — {_headline_metric(context['stats'])} for {minutes} min: {effect}"
    context["recovered"] = recovered
    return render("pressure", context, subject)
