"""Maintenance windows: planned work on a group or a worker during which alert emails are held.

The rule itself (``window_active``) is pure and takes ``now``; ``covered_worker_ids`` reads the
windows once per call for a set of workers. Create/delete are the only writes; both are safe to
repeat (deleting a missing window is a no-op).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q

from workers.models import HybridWorker, MaintenanceWindow, WorkerGroup


@dataclass(frozen=True)
class WindowSpec:
    """The timing of one window: one-off (``starts_at``/``ends_at``) or weekly."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekdays: tuple[int, ...] = ()
    start_time: time | None = None
    duration_minutes: int | None = None

    @property
    def recurring(self) -> bool:
        return bool(self.weekdays) and self.start_time is not None and bool(self.duration_minutes)


def parse_weekdays(raw: str) -> tuple[int, ...]:
    """"0,2,4" -> (0, 2, 4). Raises ValueError on anything but integers 0..6."""
    days: set[int] = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        day = int(part)
        if not 0 <= day <= 6:
            raise ValueError(f"weekday {day} is not between 0 (Monday) and 6 (Sunday)")
        days.add(day)
    return tuple(sorted(days))


def spec_of(window: MaintenanceWindow) -> WindowSpec:
    return WindowSpec(
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        weekdays=parse_weekdays(window.weekdays or ""),
        start_time=window.start_time,
        duration_minutes=window.duration_minutes,
    )


def current_occurrence(spec: WindowSpec, now: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the occurrence covering ``now``, or None. Ends are exclusive.

    A weekly occurrence may run past midnight (or for days), so the previous week's days are
    checked too.
    """
    if spec.recurring:
        assert spec.start_time is not None and spec.duration_minutes is not None
        length = timedelta(minutes=spec.duration_minutes)
        today: date = now.astimezone(UTC).date()
        for back in range(0, 8 + spec.duration_minutes // (24 * 60)):
            day = today - timedelta(days=back)
            if day.weekday() not in spec.weekdays:
                continue
            start = datetime.combine(day, spec.start_time, tzinfo=UTC)
            if start <= now < start + length:
                return start, start + length
        return None
    if spec.starts_at is not None and spec.ends_at is not None and spec.starts_at <= now < spec.ends_at:
        return spec.starts_at, spec.ends_at
    return None


def window_active(spec: WindowSpec, now: datetime) -> bool:
    return current_occurrence(spec, now) is not None


def next_occurrence(spec: WindowSpec, now: datetime) -> tuple[datetime, datetime] | None:
    """The current or next occurrence (for the page), or None when a one-off window is over."""
    current = current_occurrence(spec, now)
    if current is not None:
        return current
    if spec.recurring:
        assert spec.start_time is not None and spec.duration_minutes is not None
        today = now.astimezone(UTC).date()
        for ahead in range(0, 8):
            day = today + timedelta(days=ahead)
            if day.weekday() in spec.weekdays:
                start = datetime.combine(day, spec.start_time, tzinfo=UTC)
                if start > now:
                    return start, start + timedelta(minutes=spec.duration_minutes)
        return None
    if spec.starts_at is not None and spec.ends_at is not None and spec.starts_at > now:
        return spec.starts_at, spec.ends_at
    return None


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
    created_by: AbstractBaseUser | AnonymousUser | None = None,
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
