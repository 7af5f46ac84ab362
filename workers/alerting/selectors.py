"""Reads for the alerts page: alerts with their members, notifications, maintenance windows, and
where emails go. Query counts do not grow with the number of rows (members are prefetched)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, Q

from workers.models import Alert, AlertMember, AlertState, MaintenanceWindow, Notification, NotificationStatus, WorkerGroup
from workers.rules.maintenance import WEEKDAY_NAMES, next_occurrence, spec_of


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    members: list[AlertMember]
    duration_seconds: float
    causes: list[str]


@dataclass(frozen=True)
class WindowRow:
    window: MaintenanceWindow
    target: str
    schedule: str
    active: bool
    occurrence: tuple[datetime, datetime] | None


@dataclass(frozen=True)
class MailFile:
    name: str
    modified: datetime
    size: int


def group_choices() -> list[tuple[int, str]]:
    """(id, "group (account)") of live groups, one query."""
    rows = WorkerGroup.objects.filter(removed_at__isnull=True).order_by("name", "account__name").values_list(
        "pk", "name", "account__name"
    )
    return [(pk, f"{name} ({account})") for pk, name, account in rows]


def _rows(alerts: Any, *, now: datetime) -> list[AlertRow]:
    rows = []
    for alert in alerts:
        members = list(alert.members.all())
        end = alert.resolved_at or now
        causes: list[str] = []
        for snapshot in (alert.diagnosis or {}).values():
            cause = (snapshot or {}).get("cause") or {}
            title = cause.get("title")
            if title and title not in causes:
                causes.append(title)
        rows.append(AlertRow(alert, members, max(0.0, (end - alert.opened_at).total_seconds()), causes))
    return rows


def alert_lists(*, now: datetime, since: datetime | None, group_id: int | None) -> dict[str, list[AlertRow]]:
    """Open alerts (all of them, whatever the window) and alerts resolved within the window."""
    base = Alert.objects.select_related("group", "account", "acknowledged_by").prefetch_related(
        Prefetch("members", queryset=AlertMember.objects.select_related("worker").order_by("down_at", "worker__name"))
    )
    if group_id is not None:
        base = base.filter(Q(group_id=group_id) | Q(members__worker__group_id=group_id)).distinct()
    open_alerts = base.filter(state=AlertState.OPEN).order_by("-opened_at")
    recent = base.filter(state=AlertState.RESOLVED)
    if since is not None:
        recent = recent.filter(opened_at__gte=since)
    return {"open": _rows(open_alerts, now=now), "recent": _rows(recent.order_by("-opened_at")[:200], now=now)}


def notifications(*, since: datetime | None, limit: int = 100) -> list[Notification]:
    qs = Notification.objects.select_related("alert").order_by("-created_at", "-pk")
    if since is not None:
        qs = qs.filter(Q(created_at__gte=since) | Q(status=NotificationStatus.FAILED))
    return list(qs[:limit])


def failed_count() -> int:
    return Notification.objects.filter(status=NotificationStatus.FAILED).count()


def notification(pk: int) -> Notification | None:
    return Notification.objects.select_related("alert").filter(pk=pk).first()


def maintenance_rows(*, now: datetime) -> list[WindowRow]:
    rows = []
    for window in MaintenanceWindow.objects.select_related("group__account", "worker__group", "created_by").order_by("-created_at"):
        spec = spec_of(window)
        if window.worker_id:
            worker = window.worker
            assert worker is not None  # worker_id is set, so the FK row exists (select_related loaded it)
            target = f"worker {worker.name} ({worker.group.name})"
        else:
            target = f"group {window.group.name} ({window.group.account.name})" if window.group else "deleted target"
        if spec.recurring:
            days = ", ".join(WEEKDAY_NAMES[d] for d in spec.weekdays)
            schedule = f"weekly {days} at {spec.start_time:%H:%M} UTC for {spec.duration_minutes} min"
        else:
            schedule = "one-off"
        occurrence = next_occurrence(spec, now)
        active = occurrence is not None and occurrence[0] <= now < occurrence[1]
        rows.append(WindowRow(window, target, schedule, active, occurrence))
    return rows


def email_destination() -> dict[str, Any]:
    """Where alert emails go: an SMTP server, or (no EMAIL_HOST) a folder of .log files."""
    smtp = settings.EMAIL_BACKEND.endswith("smtp.EmailBackend")
    return {
        "smtp": smtp,
        "host": settings.EMAIL_HOST,
        "port": settings.EMAIL_PORT,
        "folder": settings.EMAIL_FILE_PATH if not smtp else "",
        "recipients": list(settings.ALERT_RECIPIENTS),
        "backend": settings.EMAIL_BACKEND,
    }


def _mail_dir() -> Path | None:
    folder = settings.EMAIL_FILE_PATH
    if not folder or not settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
        return None
    return Path(folder)


def mail_files(*, limit: int = 5) -> list[MailFile]:
    """The newest files Django's file backend wrote (one per connection, possibly several emails)."""
    folder = _mail_dir()
    if folder is None or not folder.is_dir():
        return []
    entries = []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_file() and entry.name.endswith(".log"):
                stat = entry.stat()
                entries.append(MailFile(entry.name, datetime.fromtimestamp(stat.st_mtime, tz=UTC), stat.st_size))
    entries.sort(key=lambda f: f.modified, reverse=True)
    return entries[:limit]


def mail_file_text(name: str, *, max_bytes: int = 200_000) -> str | None:
    """The text of one file in the mail folder; None unless ``name`` is a plain file name listed there
    (no path separators, no traversal)."""
    folder = _mail_dir()
    if folder is None or "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".log"):
        return None
    path = folder / name
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return handle.read(max_bytes).decode("utf-8", errors="replace")


def parse_window(value: str, *, now: datetime) -> datetime | None:
    """"24h" / "7d" / "30d" -> the start; "all" -> None."""
    table = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
    return now - table[value] if value in table else None


def open_alert_rows(*, now: datetime, worker_id: int | None = None, limit: int = 50) -> list[AlertRow]:
    """Open alerts, acknowledged or not (the overview lists both, acknowledged ones marked), newest
    first; with ``worker_id`` only those the worker is a member of. Two queries (members prefetched)."""
    alerts = Alert.objects.filter(state=AlertState.OPEN).select_related("group", "account", "acknowledged_by").prefetch_related(
        Prefetch("members", queryset=AlertMember.objects.select_related("worker").order_by("down_at", "worker__name"))
    )
    if worker_id is not None:
        alerts = alerts.filter(members__worker_id=worker_id).distinct()
    return _rows(alerts.order_by("-opened_at")[:limit], now=now)
