"""Pure rules for the job rollups: which rows a job counts in, and how jobs and rows are folded.

No ORM here. The rollup writer (``workers.latency.rollups``) folds raw job tuples into
``Accumulator`` objects and stores them as JobHourly/JobDaily rows; the latency reads
(``workers.latency.selectors``) fold raw tuples the same way for the exact 1 h window and merge
stored rows (``merge_rows``) for the longer ones. Histograms use the bucket edges of
``workers.rules.latency`` and are stored as compact JSON text.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import numpy as np

from workers.rules import latency, outcomes

# The key a caller of ``merge_rows`` groups rows by (its ``key_of`` result).
_K = TypeVar("_K", bound=Hashable)

# The scopes a rollup row belongs to (the values of ``workers.models.RollupScope``, which stores them).
FLEET_SCOPE, GROUP_SCOPE, RUNBOOK_SCOPE, WORKER_SCOPE = "fleet", "group", "runbook", "worker"
ROLLUP_SCOPES: tuple[str, ...] = (FLEET_SCOPE, GROUP_SCOPE, RUNBOOK_SCOPE, WORKER_SCOPE)

# Raw job tuples, in the order ``accumulate_jobs`` unpacks them (a ``values_list`` of Job).
JOB_FIELDS: tuple[str, ...] = (
    "group_id", "worker_id", "runbook", "created_at", "status", "queue_seconds", "duration_seconds", "exception",
)

# The numeric columns of a stored rollup row, by how two rows combine: added, added, or the larger kept.
COUNT_FIELDS: tuple[str, ...] = (
    "jobs", "completed", "failed", "stopped", "suspended", "other", "not_available", "queue_count", "duration_count",
)
SUM_FIELDS: tuple[str, ...] = ("queue_sum", "duration_sum")
MAX_FIELDS: tuple[str, ...] = ("queue_max", "duration_max")
HIST_FIELDS: tuple[str, ...] = ("queue_hist", "duration_hist")
KEY_FIELDS: tuple[str, ...] = ("scope", "key", "group_id", "worker_id", "runbook")
# Every stored column of a rollup row except its period and computed_at (what ``as_fields`` returns).
ROLLUP_VALUE_FIELDS: tuple[str, ...] = (
    *KEY_FIELDS, "jobs", "completed", "failed", "stopped", "suspended", "other", "not_available", "queue_count",
    "queue_sum", "queue_max", "queue_hist", "duration_count", "duration_sum", "duration_max", "duration_hist",
)


@dataclass
class Accumulator:
    """Counts, sums and histograms for one (period, key): built from jobs or merged from stored rows."""

    scope: str
    key: str
    group_id: int | None = None
    worker_id: int | None = None
    runbook: str = ""
    jobs: int = 0
    completed: int = 0
    failed: int = 0
    stopped: int = 0
    suspended: int = 0
    other: int = 0
    not_available: int = 0
    queue_count: int = 0
    queue_sum: float = 0.0
    queue_max: float | None = None
    queue_hist: list[int] = field(default_factory=latency.empty_histogram)
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_max: float | None = None
    duration_hist: list[int] = field(default_factory=latency.empty_histogram)

    def add_job(self, status: str, queue_seconds: float | None, duration_seconds: float | None, not_available: bool) -> None:
        """Count one job: its outcome, and its queue delay and duration when it has them."""
        self.jobs += 1
        name = outcomes.outcome(status)
        setattr(self, name, getattr(self, name) + 1)
        if not_available:
            self.not_available += 1
        if queue_seconds is not None:
            value = max(0.0, float(queue_seconds))
            self.queue_count += 1
            self.queue_sum += value
            self.queue_max = value if self.queue_max is None else max(self.queue_max, value)
            self.queue_hist[latency.bucket_index(value)] += 1
        if duration_seconds is not None:
            value = max(0.0, float(duration_seconds))
            self.duration_count += 1
            self.duration_sum += value
            self.duration_max = value if self.duration_max is None else max(self.duration_max, value)
            self.duration_hist[latency.bucket_index(value)] += 1

    def add_row(self, row: dict) -> None:
        """Add a stored rollup row (a ``values()`` dict of JobHourly/JobDaily)."""
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + row[name])
        self.queue_sum += row["queue_sum"]
        self.duration_sum += row["duration_sum"]
        for name in MAX_FIELDS:
            if row[name] is not None:
                mine = getattr(self, name)
                setattr(self, name, row[name] if mine is None else max(mine, row[name]))
        for name in HIST_FIELDS:
            hist = getattr(self, name)
            stored = row[name]
            for i, count in enumerate(parse_hist(stored) if isinstance(stored, str) else stored):
                if count:
                    hist[i] += count

    def counts(self) -> dict[str, int]:
        """Jobs per outcome (``outcomes.OUTCOMES``)."""
        return {name: getattr(self, name) for name in outcomes.OUTCOMES}

    def as_fields(self) -> dict:
        """The stored columns of a rollup row (``ROLLUP_VALUE_FIELDS``), histograms as JSON text."""
        return {
            "scope": self.scope, "key": self.key, "group_id": self.group_id, "worker_id": self.worker_id,
            "runbook": self.runbook, "jobs": self.jobs, "completed": self.completed, "failed": self.failed,
            "stopped": self.stopped, "suspended": self.suspended, "other": self.other,
            "not_available": self.not_available, "queue_count": self.queue_count, "queue_sum": self.queue_sum,
            "queue_max": self.queue_max, "queue_hist": dump_hist(self.queue_hist), "duration_count": self.duration_count,
            "duration_sum": self.duration_sum, "duration_max": self.duration_max, "duration_hist": dump_hist(self.duration_hist),
        }


def dump_hist(hist: Sequence[int]) -> str:
    """A histogram as compact JSON text (what JobHourly/JobDaily store)."""
    return json.dumps(list(hist), separators=(",", ":"))


def parse_hist(text: str) -> list[int]:
    """A stored histogram back as a list of BUCKET_COUNT counts (shorter arrays padded with zeros)."""
    values = [int(v) for v in json.loads(text or "[]")][: latency.BUCKET_COUNT]
    return values + [0] * (latency.BUCKET_COUNT - len(values))


def scope_keys(group_id: int, runbook: str, worker_id: int | None) -> list[tuple[str, str, int | None, int | None, str]]:
    """The rollup rows one job counts in: (scope, key, group_id, worker_id, runbook)."""
    keys: list[tuple[str, str, int | None, int | None, str]] = [
        (FLEET_SCOPE, "fleet", None, None, ""),
        (GROUP_SCOPE, f"g:{group_id}", group_id, None, ""),
        (RUNBOOK_SCOPE, f"r:{runbook}", None, None, runbook),
    ]
    if worker_id is not None:
        keys.append((WORKER_SCOPE, f"w:{worker_id}", group_id, worker_id, ""))
    return keys


def accumulate_jobs(rows: Iterable[Sequence], period: Callable[[datetime], datetime]) -> dict[tuple[datetime, str], Accumulator]:
    """Fold raw job tuples (JOB_FIELDS order) into accumulators keyed by (period start, key)."""
    accs: dict[tuple[datetime, str], Accumulator] = {}
    for group_id, worker_id, runbook, created_at, status, queue_s, duration_s, exception in rows:
        start = period(created_at)
        not_available = outcomes.is_not_available_failure(status, exception)
        for scope, key, gid, wid, rb in scope_keys(group_id, runbook, worker_id):
            acc = accs.get((start, key))
            if acc is None:
                acc = accs[(start, key)] = Accumulator(scope=scope, key=key, group_id=gid, worker_id=wid, runbook=rb)
            acc.add_job(status, queue_s, duration_s, not_available)
    return accs


def _parse_hists(texts: list[str]) -> np.ndarray:
    """Stack stored JSON arrays into an (n, BUCKET_COUNT) int matrix with one C-level parse."""
    if not texts:
        return np.zeros((0, latency.BUCKET_COUNT), dtype=np.int64)
    flat = np.fromstring(",".join(t.strip()[1:-1] for t in texts), dtype=np.int64, sep=",")
    if flat.size != len(texts) * latency.BUCKET_COUNT:
        raise ValueError("a stored histogram does not match BUCKET_EDGES; rebuild with manage.py rollup --hours 720")
    return flat.reshape(len(texts), latency.BUCKET_COUNT)


def merge_rows(rows: list[dict], key_of: Callable[[dict], _K]) -> dict[_K, tuple[Accumulator, dict]]:
    """Merge stored rollup rows per ``key_of(row)``: one accumulator per key, with the key's first row.

    The bulk counterpart of ``Accumulator.add_row`` for reads over many rows: the counts, sums,
    maxima and JSON text histograms of every row are combined with numpy in a few passes.
    """
    keys: dict[_K, int] = {}
    index = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        index[i] = keys.setdefault(key_of(row), len(keys))
    n = len(keys)
    counts = np.zeros((n, len(COUNT_FIELDS)), dtype=np.int64)
    sums = np.zeros((n, len(SUM_FIELDS)))
    maxes = np.full((n, len(MAX_FIELDS)), -1.0)
    qh = np.zeros((n, latency.BUCKET_COUNT), dtype=np.int64)
    dh = np.zeros((n, latency.BUCKET_COUNT), dtype=np.int64)
    if rows:
        np.add.at(counts, index, np.array([[r[f] for f in COUNT_FIELDS] for r in rows], dtype=np.int64))
        np.add.at(sums, index, np.array([[r[f] for f in SUM_FIELDS] for r in rows], dtype=float))
        np.maximum.at(maxes, index, np.array([[-1.0 if r[f] is None else r[f] for f in MAX_FIELDS] for r in rows]))
        np.add.at(qh, index, _parse_hists([r["queue_hist"] for r in rows]))
        np.add.at(dh, index, _parse_hists([r["duration_hist"] for r in rows]))
    first: dict[_K, dict] = {}
    for row in rows:
        first.setdefault(key_of(row), row)
    merged: dict[_K, tuple[Accumulator, dict]] = {}
    for key, i in keys.items():
        row = first[key]
        acc = Accumulator(scope=row["scope"], key=row["key"], group_id=row.get("group_id"), worker_id=row.get("worker_id"),
                          runbook=row.get("runbook", ""))
        for j, name in enumerate(COUNT_FIELDS):
            setattr(acc, name, int(counts[i, j]))
        acc.queue_sum, acc.duration_sum = float(sums[i, 0]), float(sums[i, 1])
        acc.queue_max = None if maxes[i, 0] < 0 else float(maxes[i, 0])
        acc.duration_max = None if maxes[i, 1] < 0 else float(maxes[i, 1])
        acc.queue_hist = [int(x) for x in qh[i]]
        acc.duration_hist = [int(x) for x in dh[i]]
        merged[key] = (acc, row)
    return merged
