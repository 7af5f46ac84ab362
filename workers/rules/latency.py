"""Pure rules for job latency: histogram buckets, histogram percentiles, windows and timeout thresholds.

No ORM here, so everything is trivially testable and shared by the rollup service, the selectors and
the pages. The bucket edges are defined ONCE (``BUCKET_EDGES``); every stored histogram
(``JobHourly``/``JobDaily``.queue_hist/duration_hist) uses them, so histograms from any hour, group
or runbook can be added element-wise.

Resolution: log-spaced buckets, four per doubling (ratio 2^(1/4) ~ 1.189) from 1 s to 2^16.5 s
(~25.7 h), one bucket [0, 1 s) below and one overflow bucket above. A percentile read from a
merged histogram is interpolated geometrically inside its bucket, so it lies in the same bucket as
the exact value: accurate to one bucket, i.e. within +-19 % (+-1 s below 1 s).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from workers.rules.format import format_duration

STEPS_PER_DOUBLING = 4
BUCKET_RATIO = 2 ** (1 / STEPS_PER_DOUBLING)
_TOP_EXPONENT_STEPS = 66  # 2^(66/4) = 2^16.5 s ~ 25.7 h: above the 24 h the pages care about.
# Lower edges: bucket i holds values in [BUCKET_EDGES[i], BUCKET_EDGES[i+1]); the last is open-ended.
BUCKET_EDGES: tuple[float, ...] = (0.0,) + tuple(2 ** (k / STEPS_PER_DOUBLING) for k in range(_TOP_EXPONENT_STEPS + 1))
BUCKET_COUNT = len(BUCKET_EDGES)
RESOLUTION_PERCENT = round((BUCKET_RATIO - 1) * 100)
RESOLUTION_TEXT = (
    f"percentiles from log-spaced histograms ({STEPS_PER_DOUBLING} buckets per doubling): "
    f"accurate to one bucket (+-{RESOLUTION_PERCENT} %, +-1 s below 1 s)"
)
EXACT_TEXT = "percentiles computed exactly from the raw job rows"

PERCENTILES: tuple[int, ...] = (50, 95, 99)

DEFAULT_RUNBOOK = "*"
DEFAULT_MAX_QUEUE_SECONDS = 15 * 60
DEFAULT_MAX_RUN_SECONDS = 60 * 60

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
WINDOW_LABELS: dict[str, str] = {"1h": "last 1 hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}


def bucket_index(seconds: float) -> int:
    """The histogram bucket of a value (negative clock skew counts as 0 s)."""
    if seconds < 1.0:
        return 0
    steps = math.floor(math.log2(seconds) * STEPS_PER_DOUBLING + 1e-9)
    # Guard against float rounding at an edge: the value must be >= its bucket's lower edge.
    if steps >= 0 and 2 ** (steps / STEPS_PER_DOUBLING) > seconds:
        steps -= 1
    return min(steps + 1, BUCKET_COUNT - 1)


def empty_histogram() -> list[int]:
    return [0] * BUCKET_COUNT


def histogram(values: Iterable[float]) -> list[int]:
    counts = empty_histogram()
    for value in values:
        counts[bucket_index(value)] += 1
    return counts


def merge_histograms(histograms: Iterable[Sequence[int]]) -> list[int]:
    """Element-wise sum. Arrays shorter than BUCKET_COUNT (none today) are padded with zeros."""
    total = empty_histogram()
    for hist in histograms:
        for i, count in enumerate(hist[:BUCKET_COUNT]):
            total[i] += count
    return total


def bucket_label(index: int) -> str:
    low = BUCKET_EDGES[index]
    if index == BUCKET_COUNT - 1:
        return f">= {format_duration(low)}"
    return f"{format_duration(low)} - {format_duration(BUCKET_EDGES[index + 1])}"


def percentile_from_histogram(counts: Sequence[int], q: float, *, max_value: float | None = None) -> float | None:
    """The q-th percentile (0-100) of a histogram, interpolated inside its bucket.

    Linear inside [0, 1 s), geometric (log-linear) inside the log-spaced buckets, so the estimate
    always stays inside the bucket that holds the exact percentile. ``max_value`` (the largest value
    seen) caps the estimate and gives the overflow bucket an upper edge.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q / 100 * total
    cumulative = 0
    for i, count in enumerate(counts):
        if count <= 0:
            continue
        if cumulative + count >= rank:
            fraction = (rank - cumulative) / count
            low = BUCKET_EDGES[i]
            high = BUCKET_EDGES[i + 1] if i + 1 < BUCKET_COUNT else (max_value if max_value is not None else low)
            if max_value is not None:
                high = max(low, min(high, max_value))
            if i == 0 or low <= 0:
                value = low + (high - low) * fraction
            else:
                value = low * (high / low) ** fraction
            return float(value)
        cumulative += count
    return float(max_value) if max_value is not None else float(BUCKET_EDGES[-1])


@dataclass(frozen=True)
class Threshold:
    runbook: str
    max_queue_seconds: int
    max_run_seconds: int
    is_default: bool


@dataclass(frozen=True)
class ThresholdSet:
    """The default ("*") and the per-runbook overrides, resolved without touching the database."""

    default: Threshold
    overrides: Mapping[str, Threshold]

    @classmethod
    def build(cls, rows: Iterable[tuple[str, int, int]]) -> ThresholdSet:
        default = Threshold(DEFAULT_RUNBOOK, DEFAULT_MAX_QUEUE_SECONDS, DEFAULT_MAX_RUN_SECONDS, True)
        overrides: dict[str, Threshold] = {}
        for runbook, max_queue, max_run in rows:
            if runbook == DEFAULT_RUNBOOK:
                default = Threshold(DEFAULT_RUNBOOK, int(max_queue), int(max_run), True)
            else:
                overrides[runbook] = Threshold(runbook, int(max_queue), int(max_run), False)
        return cls(default=default, overrides=overrides)

    def for_runbook(self, runbook: str) -> Threshold:
        return self.overrides.get(runbook, self.default)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
