"""Reads for the correlation page, the capacity page, the printable report and the correlations API.

Everything comes from the newest precomputed ``CapacityRun`` of a window:

- ``runs``: the analysed windows and the newest run of each.
- ``findings``: the ranked findings ("where pressure explains delay") and the examined pairs.
- ``sizing``: per-group load, M/M/c sizing for a target, single points of failure, saturation trends.

The package re-exports the public API so pages can ``from workers.capacity import selectors as sel``.
"""
from __future__ import annotations

from workers.capacity.selectors.findings import CorrelationReport, FindingRow, api_findings, correlation_report
from workers.capacity.selectors.runs import WINDOWS, WindowError, latest_run, parse_window
from workers.capacity.selectors.sizing import (
    DEFAULT_TARGET_P95_SECONDS,
    HTML_ROW_LIMIT,
    CapacityReport,
    CapacityRow,
    TrendSeries,
    capacity_report,
)

__all__ = [
    "DEFAULT_TARGET_P95_SECONDS", "HTML_ROW_LIMIT", "WINDOWS", "CapacityReport", "CapacityRow", "CorrelationReport",
    "FindingRow", "TrendSeries", "WindowError", "api_findings", "capacity_report", "correlation_report", "latest_run",
    "parse_window",
]
