"""Azure's ARM wire format for times, shared by the server state and the ARM routes."""
from __future__ import annotations

from datetime import UTC, datetime


def arm_dt(dt: datetime | None, digits: int = 7) -> str | None:
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    frac = f"{dt.microsecond:06d}0"[:digits]
    return f"{dt:%Y-%m-%dT%H:%M:%S}" + (f".{frac}" if digits else "") + "+00:00"


def from_epoch(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)
