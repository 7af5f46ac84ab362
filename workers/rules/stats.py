"""Pure statistics: percentile, correlation, least-squares fits and a permutation test of tail ratios.

No ORM, no clock, no I/O. Everything takes plain sequences and returns floats or small frozen
dataclasses, so callers (capacity findings, fleet and wall reads, latency reads, pressure emails) and
the tests can check each formula against numpy/scipy or a textbook value. Calling any function twice
with the same input gives the same answer.

* ``percentile`` is THE Python percentile: linear interpolation between closest ranks, the same
  definition as numpy's default and PostgreSQL's ``PERCENTILE_CONT`` (see ``workers/db.py``), so a
  figure is the same whichever engine computed it. (A percentile read from a latency histogram is a
  different estimate: ``workers.rules.latency.percentile_from_histogram``.)
* Correlation: Pearson (linear) and Spearman (rank, robust to the long tail of queue delays), both
  with scipy's two-sided p-values, reported as they are.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

#: A series of numbers with gaps: a list (None for a missing value) or a numpy float array (NaN).
Series = Sequence[float | None] | np.ndarray


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0-100) of the finite values, None when none is left.

    Linear interpolation between closest ranks: numpy's default, PostgreSQL's ``PERCENTILE_CONT``.
    Missing (None) and non-finite values are ignored.
    """
    ordered = sorted(float(v) for v in values if v is not None and math.isfinite(v))
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


@dataclass(frozen=True)
class Correlation:
    n: int
    pearson: float
    pearson_p: float
    spearman: float
    spearman_p: float

    @property
    def p_value(self) -> float:
        """The p-value we rank and filter on: Spearman's (delays are heavy-tailed, ranks are robust)."""
        return self.spearman_p


@dataclass(frozen=True)
class LinearFit:
    slope: float
    intercept: float
    r2: float
    n: int

    def predict(self, x: float) -> float:
        return self.intercept + self.slope * x


def _as_float_array(values: Series) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(float, copy=False)
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def clean_pairs(x: Series, y: Series) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (as two float arrays) where both x and y are present and finite."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} != {len(y)})")
    xa = _as_float_array(x)
    ya = _as_float_array(y)
    keep = np.isfinite(xa) & np.isfinite(ya)
    return xa[keep], ya[keep]


def _pearson(xa: np.ndarray, ya: np.ndarray) -> tuple[float, float]:
    """r and its two-sided p-value (t distribution with n - 2 degrees of freedom), as scipy's pearsonr."""
    n = xa.size
    xd, yd = xa - xa.mean(), ya - ya.mean()
    r = float(np.dot(xd, yd) / math.sqrt(float(np.dot(xd, xd)) * float(np.dot(yd, yd))))
    r = max(-1.0, min(1.0, r))
    if abs(r) == 1.0:
        return r, 0.0
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    return r, float(2 * special.stdtr(n - 2, -abs(t)))


def correlate(x: Series, y: Series) -> Correlation | None:
    """Pearson and Spearman with p-values over the pairs where both values exist.

    Computed with numpy (the same formulas as scipy's pearsonr/spearmanr, which the tests compare
    against) because a fleet-wide run assesses thousands of pairs. None when fewer than 3 pairs remain
    or either side is constant (a coefficient is undefined there, and pretending it is 0 would hide
    that we know nothing).
    """
    xa, ya = clean_pairs(x, y)
    n = int(xa.size)
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return None
    pearson, pearson_p = _pearson(xa, ya)
    spearman, spearman_p = _pearson(stats.rankdata(xa), stats.rankdata(ya))
    return Correlation(n=n, pearson=pearson, pearson_p=pearson_p, spearman=spearman, spearman_p=spearman_p)


def linear_fit(x: Series, y: Series) -> LinearFit | None:
    """Least-squares line y = intercept + slope * x (None with < 2 points or constant x)."""
    xa, ya = clean_pairs(x, y)
    if xa.size < 2 or np.ptp(xa) == 0:
        return None
    xd, yd = xa - xa.mean(), ya - ya.mean()
    sxx, syy, sxy = float(np.dot(xd, xd)), float(np.dot(yd, yd)), float(np.dot(xd, yd))
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 1.0
    return LinearFit(slope=slope, intercept=float(ya.mean() - slope * xa.mean()), r2=r2, n=int(xa.size))



def tail_ratio_test(y: np.ndarray, high: np.ndarray, *, q: float = 95.0, permutations: int = 1999, seed: int = 20261120) -> float:
    """One-sided permutation p-value of p_q(y[high]) / p_q(y[~high]) being this large by chance.

    p = (1 + shuffles with a ratio >= the observed one) / (1 + shuffles). Deterministic for a seed.
    """
    y = np.asarray(y, dtype=float)
    high = np.asarray(high, dtype=bool)
    n_high = int(high.sum())
    if n_high == 0 or n_high == y.size:
        return 1.0

    def ratio(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        a = np.percentile(hi, q, axis=-1)
        b = np.percentile(lo, q, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), np.where(a > 0, np.inf, 1.0))

    observed = float(ratio(y[high], y[~high]))
    rng = np.random.default_rng(seed)
    # In chunks so a group with thousands of jobs never needs a permutations x n matrix at once.
    chunk = max(1, min(permutations, 2_000_000 // max(1, y.size)))
    at_least = 0
    done = 0
    while done < permutations:
        k = min(chunk, permutations - done)
        shuffled = rng.permuted(np.broadcast_to(y, (k, y.size)), axis=1)
        at_least += int(np.count_nonzero(ratio(shuffled[:, :n_high], shuffled[:, n_high:]) >= observed))
        done += k
    return float((1 + at_least) / (1 + permutations))
