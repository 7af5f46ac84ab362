"""Maintenance-window recurrence: when a one-off or weekly window is active, and its next occurrence.

Pure date math (no ORM): ``spec_of`` reads the timing fields of any window-shaped object (the
``MaintenanceWindow`` model has them), and every rule takes ``now``. Times are UTC; an occurrence's
end is exclusive. ``workers.alerting.maintenance`` uses these to hold alert emails, and the alerts
page uses them to show the schedule.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

# Weekday numbers as stored and parsed here (Monday = 0, like ``date.weekday()``), for forms and pages.
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class WindowFields(Protocol):
    """The timing columns of a stored window (``MaintenanceWindow``)."""

    starts_at: datetime | None
    ends_at: datetime | None
    weekdays: str
    start_time: time | None
    duration_minutes: int | None


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


def spec_of(window: WindowFields) -> WindowSpec:
    """The timing of a stored window (weekdays are stored as "0,2,4")."""
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
        for back in range(8 + spec.duration_minutes // (24 * 60)):
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
    """True when an occurrence of the window covers ``now``."""
    return current_occurrence(spec, now) is not None


def next_occurrence(spec: WindowSpec, now: datetime) -> tuple[datetime, datetime] | None:
    """The current or next occurrence (for the page), or None when a one-off window is over."""
    current = current_occurrence(spec, now)
    if current is not None:
        return current
    if spec.recurring:
        assert spec.start_time is not None and spec.duration_minutes is not None
        today = now.astimezone(UTC).date()
        for ahead in range(8):
            day = today + timedelta(days=ahead)
            if day.weekday() in spec.weekdays:
                start = datetime.combine(day, spec.start_time, tzinfo=UTC)
                if start > now:
                    return start, start + timedelta(minutes=spec.duration_minutes)
        return None
    if spec.starts_at is not None and spec.ends_at is not None and spec.starts_at > now:
        return spec.starts_at, spec.ends_at
    return None
