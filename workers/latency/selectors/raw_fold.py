"""Raw jobs folded into rollup-shaped rows by the database, in one query.

``workers.latency.selectors.coverage`` reads whatever the rollups do not cover (the window's partial
first hour, its recent tail) from the raw jobs. At fleet scale that tail holds tens of thousands of
jobs, too many to fold in Python per page view, so the database aggregates them per period and key,
exactly as the rollup writer folds them (``workers.rules.job_rollups.accumulate_jobs``):

- the outcome of ``workers.rules.outcomes.outcome`` (lower-cased, trimmed status), and its
  "hybrid worker was not available" failure (the phrases of ``outcomes.NOT_AVAILABLE_PHRASES``);
- queue delay and duration clamped at 0 s, their counts, sums and maxima;
- histograms over ``workers.rules.latency.BUCKET_EDGES``: the database returns each group's values as
  an array and numpy places them all at once in the bucket of the highest edge each reaches, which is
  ``latency.bucket_index``.

One query (a UNION ALL of one GROUP BY per scope over the filtered jobs). PostgreSQL only: SQLite (a
small deployment) folds in Python (``coverage._raw_rows``); SQLite's printf cannot return a float exactly.
The SQL is written out here rather than built with the ORM, whose expression resolution per request
cost more than the query.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import QuerySet

from workers.rules import job_rollups, latency, outcomes

_OUTCOMES = ("completed", "failed", "stopped", "suspended")
_NOT_AVAILABLE = (*outcomes.NOT_AVAILABLE_PHRASES, "hybrid worker wasn’t available")
_JOB_COLUMNS = ("created_at", "status", "exception", "queue_seconds", "duration_seconds", "group_id", "worker_id", "runbook")
_MEASURES = (("queue", "queue_seconds"), ("duration", "duration_seconds"))
# Per scope: group id, worker id, runbook, group name, account name, worker name (SQL over j, g, a, w),
# and which of them are grouped by (the others are constants).
_SCOPES: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    job_rollups.FLEET_SCOPE: (("NULL", "NULL", "''", "NULL", "NULL", "NULL"), ()),
    job_rollups.GROUP_SCOPE: (("j.group_id", "NULL", "''", "g.name", "a.name", "NULL"), (0, 3, 4)),
    job_rollups.RUNBOOK_SCOPE: (("NULL", "NULL", "j.runbook", "NULL", "NULL", "NULL"), (2,)),
    job_rollups.WORKER_SCOPE: (("j.group_id", "j.worker_id", "''", "g.name", "a.name", "w.name"), (0, 1, 3, 4, 5)),
}
_NULL_TYPES = ("bigint", "bigint", "varchar", "varchar", "varchar", "varchar")


def _aggregates() -> tuple[str, list[Any]]:
    """The aggregate columns (SQL) and their parameters, in the order ``fold_raw`` unpacks them."""
    cols, params = ["COUNT(*)"], []
    for name in _OUTCOMES:
        cols.append("COUNT(*) FILTER (WHERE j.outcome = %s)")
        params.append(name)
    cols.append("COUNT(*) FILTER (WHERE j.not_available)")
    for _prefix, col in _MEASURES:
        clamped = f"CASE WHEN j.{col} < 0 THEN 0.0 ELSE j.{col} END"
        values = f"array_agg(j.{col}) FILTER (WHERE j.{col} IS NOT NULL)"
        cols += [f"COUNT(j.{col})", f"SUM({clamped})", f"MAX({clamped})", values]
    return ", ".join(cols), params


def _histograms(values: list[Any], counts: list[int]) -> list[str]:
    """One histogram per row from its values (a list of floats), as stored JSON text."""
    flat = np.concatenate([np.asarray(v, dtype=float) for v, n in zip(values, counts) if n]) if any(counts) else np.zeros(0)
    rows = np.repeat(np.arange(len(counts)), counts)
    buckets = np.searchsorted(np.asarray(latency.BUCKET_EDGES), np.maximum(flat, 0.0), side="right") - 1
    matrix = np.bincount(rows * latency.BUCKET_COUNT + buckets, minlength=len(counts) * latency.BUCKET_COUNT)
    return [job_rollups.dump_hist(r.tolist()) for r in matrix.reshape(len(counts), latency.BUCKET_COUNT)]


def _period(value: datetime) -> datetime:
    """A truncated UTC timestamp (naive, from ``AT TIME ZONE 'UTC'``) as an aware datetime."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fold_raw(qs: QuerySet, *, by_day: bool, scopes: tuple[str, ...], labels: bool) -> list[dict]:
    """Rollup-shaped rows (``coverage._ROW_FIELDS``, "period_" and, with ``labels``, the label fields)
    of the jobs in ``qs`` per period (UTC hour, or day when ``by_day``) and key of ``scopes``. One query."""
    if not scopes:
        return []
    inner, inner_params = qs.order_by().values_list(*_JOB_COLUMNS).query.sql_with_params()
    phrases = " OR ".join(["LOWER(x.exception) LIKE %s"] * len(_NOT_AVAILABLE))
    # Each job's outcome and not-available flag, worked out once, then grouped once per scope.
    jobs_sql = (f"SELECT x.*, LOWER(TRIM(x.status)) AS outcome, "
                f"(LOWER(TRIM(x.status)) = 'failed' AND ({phrases})) AS not_available FROM ({inner}) x")
    jobs_params = [*(f"%{p}%" for p in _NOT_AVAILABLE), *inner_params]
    trunc = f"date_trunc('{'day' if by_day else 'hour'}', j.created_at AT TIME ZONE 'UTC')"  # naive UTC, see _period
    aggs, agg_params = _aggregates()
    parts, params = [], jobs_params
    for scope in scopes:
        columns, grouped = _SCOPES[scope]
        typed = [c if c != "NULL" else f"CAST(NULL AS {_NULL_TYPES[i]})" for i, c in enumerate(columns)]
        group_by = ", ".join(["1", *(str(i + 3) for i in grouped)])
        joins = ""
        if scope in (job_rollups.GROUP_SCOPE, job_rollups.WORKER_SCOPE):
            joins = ("LEFT JOIN workers_workergroup g ON g.id = j.group_id "
                     "LEFT JOIN workers_automationaccount a ON a.id = g.account_id ")
        if scope == job_rollups.WORKER_SCOPE:
            joins += "LEFT JOIN workers_hybridworker w ON w.id = j.worker_id WHERE j.worker_id IS NOT NULL "
        parts.append(f"SELECT {trunc}, %s, {', '.join(typed)}, {aggs} FROM j {joins}GROUP BY {group_by}")
        params += [scope, *agg_params]
    with connection.cursor() as cursor:
        cursor.execute(f"WITH j AS MATERIALIZED ({jobs_sql}) " + " UNION ALL ".join(parts), params)
        found = cursor.fetchall()
    hists = {prefix: _histograms([r[14 + 4 * k + 3] for r in found], [r[14 + 4 * k] for r in found])
             for k, (prefix, _col) in enumerate(_MEASURES)}
    out = []
    for i, r in enumerate(found):
        period, scope, gid, wid, rb, gname, aname, wname = r[:8]
        jobs, completed, failed, stopped, suspended, not_available = r[8:14]
        q_count, q_sum, q_max, _q, d_count, d_sum, d_max, _d = r[14:22]
        key = {job_rollups.FLEET_SCOPE: "fleet", job_rollups.GROUP_SCOPE: f"g:{gid}",
               job_rollups.RUNBOOK_SCOPE: f"r:{rb}", job_rollups.WORKER_SCOPE: f"w:{wid}"}[scope]
        row = {
            "scope": scope, "key": key, "group_id": gid, "worker_id": wid, "runbook": rb or "", "jobs": jobs,
            "completed": completed, "failed": failed, "stopped": stopped, "suspended": suspended,
            "other": jobs - completed - failed - stopped - suspended, "not_available": not_available,
            "queue_count": q_count, "queue_sum": float(q_sum or 0.0), "queue_max": q_max, "queue_hist": hists["queue"][i],
            "duration_count": d_count, "duration_sum": float(d_sum or 0.0), "duration_max": d_max,
            "duration_hist": hists["duration"][i], "period_": _period(period),
        }
        if labels:
            row.update({"group__name": gname, "group__account__name": aname, "worker__name": wname})
        out.append(row)
    return out
