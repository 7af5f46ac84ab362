"""Writes for timeout thresholds (RunbookThreshold), called by the thresholds page.

Both functions are idempotent: saving the same values twice leaves one row with those values;
deleting a missing row is a no-op.
"""
from __future__ import annotations

from workers.models import RunbookThreshold


def set_threshold(*, runbook: str, max_queue_seconds: int, max_run_seconds: int) -> RunbookThreshold:
    """Create or update the threshold of ``runbook`` ("*" = the default for every other runbook)."""
    row, _created = RunbookThreshold.objects.update_or_create(
        runbook=runbook, defaults={"max_queue_seconds": max_queue_seconds, "max_run_seconds": max_run_seconds}
    )
    return row


def delete_threshold(*, runbook: str) -> bool:
    """Remove a per-runbook threshold (or the stored default, which reverts to the built-in one)."""
    deleted, _ = RunbookThreshold.objects.filter(runbook=runbook).delete()
    return deleted > 0
