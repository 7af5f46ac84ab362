"""The capacity analysis' windows and the newest precomputed run of each.

Every capacity read starts from the newest complete ``CapacityRun`` of a window (written by
``workers.capacity.correlation.compute_findings``); readers never see a half-written run.
"""
from __future__ import annotations

from datetime import datetime

from workers.models import AnalysisWindow, CapacityRun
from workers.rules.coverage import DataSpan

WINDOWS = [w.value for w in AnalysisWindow]


class WindowError(ValueError):
    """An unknown window key (the message is safe to show)."""


def parse_window(raw: str | None, default: str = AnalysisWindow.WEEK) -> str:
    """A window key from the query string; a clear error for anything else."""
    value = (raw or default).strip()
    if value not in WINDOWS:
        raise WindowError(f"window must be one of {', '.join(WINDOWS)} (got {value[:20]!r})")
    return value


def latest_run(window: str) -> CapacityRun | None:
    """The newest complete run of a window (index capacityrun_latest), or None before the first."""
    return CapacityRun.objects.filter(window=window).order_by("-computed_at", "-id").first()


def run_data_span(run: CapacityRun) -> DataSpan | None:
    """A run's covered span: from the first data in its window (stored by the run) to its end."""
    if "data_start" not in run.fleet:
        return None  # a run from before the span was stored
    raw = run.fleet.get("data_start")
    first = datetime.fromisoformat(raw) if raw else None
    return DataSpan.of(run.window, run.window_start, run.computed_at, first, run.computed_at if first else None)
