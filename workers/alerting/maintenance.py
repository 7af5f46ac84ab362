"""Maintenance windows: planned work on a group or a worker during which alert emails are held.

The timing rule (``window_active``, the weekly recurrence) is pure and lives in
``workers.rules.maintenance``; ``covered_worker_ids`` reads the windows once per call for a set of
workers. Create/delete are the only writes; both are safe to repeat (deleting a missing window is
a no-op).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q

from workers.models import HybridWorker, MaintenanceWindow, WorkerGroup
from workers.rules.maintenance import spec_of, window_active


def covered_worker_ids(worker_ids: Iterable[int], *, now: datetime) -> set[int]:
    """The workers among ``worker_ids`` under an active window (their own or their group's)."""
    ids = set(worker_ids)
    if not ids:
        return set()
    group_of = dict(HybridWorker.objects.filter(pk__in=ids).values_list("pk", "group_id"))
    windows = MaintenanceWindow.objects.filter(Q(worker_id__in=ids) | Q(group_id__in=set(group_of.values())))
    covered: set[int] = set()
    for window in windows:
        if not window_active(spec_of(window), now):
            continue
        if window.worker_id is not None:
            covered.add(window.worker_id)
        else:
            covered.update(pk for pk, group_id in group_of.items() if group_id == window.group_id)
    return covered & ids


def create_maintenance_window(
    *,
    reason: str,
    group: WorkerGroup | None = None,
    worker: HybridWorker | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    weekdays: tuple[int, ...] = (),
    start_time: time | None = None,
    duration_minutes: int | None = None,
    created_by: User | AnonymousUser | None = None,
) -> MaintenanceWindow:
    """Store a validated window (the form checks the shape; this re-checks the invariants)."""
    if (group is None) == (worker is None):
        raise ValueError("a maintenance window covers exactly one group or one worker")
    recurring = bool(weekdays)
    if recurring and (start_time is None or not duration_minutes):
        raise ValueError("a weekly window needs a start time and a duration")
    if not recurring and (starts_at is None or ends_at is None or ends_at <= starts_at):
        raise ValueError("a one-off window needs a start before its end")
    user = created_by if created_by is not None and created_by.is_authenticated else None
    return MaintenanceWindow.objects.create(
        group=group,
        worker=worker,
        starts_at=None if recurring else starts_at,
        ends_at=None if recurring else ends_at,
        weekdays=",".join(str(d) for d in weekdays),
        start_time=start_time if recurring else None,
        duration_minutes=duration_minutes if recurring else None,
        reason=reason,
        created_by=user,
    )


def delete_maintenance_window(*, window_id: int) -> bool:
    """Delete a window; held alerts are released by the next ``process_outbox``. Repeating is a no-op."""
    deleted, _ = MaintenanceWindow.objects.filter(pk=window_id).delete()
    return deleted > 0
