"""Ingestion: what every ingest function shares (its result, the batch size, clipping to a column).

Every ingest function upserts by the natural key (ARM id, ``(account, job_id)``, ``(worker, ts)``)
in batches with ``bulk_create(update_conflicts=True)``, which is ``INSERT ... ON CONFLICT DO UPDATE``
on both PostgreSQL and SQLite. Feeding the same records twice, or two overlapping windows, leaves
the same rows. One malformed record is logged and skipped; it never sinks the batch. No per-row
queries: a poll of 10,000 workers costs a handful of statements per batch.

The functions, by source: Automation's listings in ``workers.fleet.inventory`` (groups, workers)
and ``workers.fleet.jobs`` (jobs); Log Analytics signals in ``workers.fleet.telemetry``
(heartbeats, CPU/memory, agent events). Called by ``workers.fleet.polling`` (one function per poll
kind) and by tests with hand-built records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.db.models import Field, Model

BATCH = 1000


@dataclass(frozen=True)
class IngestResult:
    """What one ingest call wrote and left out."""

    rows: int  # records written (inserted or updated)
    skipped: int = 0  # malformed, unmatched or stale records
    removed: int = 0  # rows newly marked removed (groups/workers no longer listed)
    revived: int = 0  # removed rows listed again


def clip(value: str | None, field_name: str, model: type[Model]) -> str:
    """Fit a string into its column so one long Azure value cannot fail a whole batch."""
    text = value or ""
    # get_field is typed Field | ForeignObjectRel; the clipped fields are concrete char columns.
    limit = cast("Field[Any, Any]", model._meta.get_field(field_name)).max_length
    return text[:limit] if limit else text
