"""Pure statistics for correlation and capacity planning: no ORM, no clock, no I/O.

Everything here takes plain sequences and returns small frozen dataclasses, so the services that
feed it (``workers/services/correlation.py``, ``workers/services/capacity.py``) and the tests can
check each formula against scipy or a textbook value. Calling any function twice with the same
input gives the same answer.

Models used, and why:

* Correlation: Pearson (linear) and Spearman (rank, robust to the long tail of queue delays), both
  with scipy's two-sided p-values, reported as they are. A pair is only *flagged* when all hold:
  a positive association, real pressure (the metric's p95 is above the pressure threshold), an
  effect (the target's p95 under pressure is several times its p95 otherwise) and significance of
  that effect (a permutation test). Correlation alone would flag healthy workers whose CPU merely
  follows the daily cycle, and would miss a pressured machine whose effect is diluted by its peers.
* Queueing: an M/M/c queue (Poisson arrivals, exponential service times, c identical servers,
  first come first served). Erlang C gives the probability that a job waits; the waiting time of a
  job that waits is exponential with rate c*mu - lambda, so any percentile has a closed form.
* Forecast: ordinary least squares on daily values with a Student-t prediction interval; the
  saturation date is where the fitted line (and each edge of the interval) crosses the threshold.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

# Documented limits (Microsoft Learn, "Troubleshoot extension-based Hybrid Runbook Worker issues" and
# "Azure Automation service limits"): a worker polls every 30 s and "can generally pick up four jobs
# per ping"; a single hybrid worker runs at most 50 jobs concurrently.
POLL_INTERVAL_SECONDS = 30.0
JOBS_PER_POLL = 4
MAX_CONCURRENT_JOBS_PER_WORKER = 50


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


def _as_float_array(values: Sequence[float | None]) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(float, copy=False)
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _clean_pairs(x: Sequence[float | None], y: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
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


def correlate(x: Sequence[float | None], y: Sequence[float | None]) -> Correlation | None:
    """Pearson and Spearman with p-values over the pairs where both values exist.

    Computed with numpy (the same formulas as scipy's pearsonr/spearmanr, which the tests compare
    against) because a fleet-wide run assesses thousands of pairs. None when fewer than 3 pairs remain
    or either side is constant (a coefficient is undefined there, and pretending it is 0 would hide
    that we know nothing).
    """
    xa, ya = _clean_pairs(x, y)
    n = int(xa.size)
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return None
    pearson, pearson_p = _pearson(xa, ya)
    spearman, spearman_p = _pearson(stats.rankdata(xa), stats.rankdata(ya))
    return Correlation(n=n, pearson=pearson, pearson_p=pearson_p, spearman=spearman, spearman_p=spearman_p)


def linear_fit(x: Sequence[float | None], y: Sequence[float | None]) -> LinearFit | None:
    """Least-squares line y = intercept + slope * x (None with < 2 points or constant x)."""
    xa, ya = _clean_pairs(x, y)
    if xa.size < 2 or np.ptp(xa) == 0:
        return None
    xd, yd = xa - xa.mean(), ya - ya.mean()
    sxx, syy, sxy = float(np.dot(xd, xd)), float(np.dot(yd, yd)), float(np.dot(xd, yd))
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 1.0
    return LinearFit(slope=slope, intercept=float(ya.mean() - slope * xa.mean()), r2=r2, n=int(xa.size))


def percentile(values: Sequence[float | None], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation) of the non-missing values, None if empty."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return None
    return float(np.percentile(arr, q))


# --- Findings: "where pressure explains delay" -------------------------------------------------


@dataclass(frozen=True)
class FindingRules:
    """Thresholds a pair must pass to be flagged. Defaults are deliberately strict: a false alarm on a
    healthy machine costs an operator's trust, a missed weak effect costs little."""

    pressure_threshold: float = 85.0  # percent; the metric must really reach this
    pressure_percentile: float = 95.0  # ... at this percentile of its pairs
    alpha: float = 0.01  # one-sided permutation test of the effect (p95 ratio)
    permutations: int = 1999
    min_rho: float = 0.0  # Spearman's rho must be above this (a positive association)
    min_ratio: float = 1.5  # target p95 when pressured / target p95 when calm
    min_n: int = 30  # pairs (jobs) with both a metric value and a target value
    min_side: int = 10  # pairs on each side of the threshold to compare


@dataclass(frozen=True)
class PairAssessment:
    correlation: Correlation | None
    fit: LinearFit | None
    metric_p95: float | None
    high_n: int  # pairs with the metric above the threshold
    low_n: int
    target_p95_high: float | None
    target_p95_low: float | None
    ratio: float | None  # target_p95_high / target_p95_low
    effect_p: float | None  # permutation p-value of the ratio (None when not tested)
    flagged: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)  # why it was NOT flagged (empty when flagged)

    @property
    def score(self) -> float:
        """Ranking strength: rho times log2 of the effect ratio (capped), 0 when undefined."""
        if self.correlation is None or self.ratio is None or self.ratio <= 1:
            return 0.0
        return max(self.correlation.spearman, 0.0) * math.log2(min(self.ratio, 64.0))


def assess_pair(x: Sequence[float | None], y: Sequence[float | None], *, rules: FindingRules = FindingRules()) -> PairAssessment:
    """Decide whether the metric x (percent, per job) explains the target y (seconds, per job).

    Flagged only with significance AND effect size AND actual pressure AND a positive association;
    ``reasons`` lists every rule that failed, in words, so the page can say why a pair was not flagged.

    Significance is that of the effect, not of rho: in a group of k members only about 1/k of the
    jobs run on the pressured machine, so the correlation over all of the group's jobs is diluted
    (small rho) while the tail under pressure is much longer. A one-sided permutation test of the p95
    ratio (labels "above / below the threshold" shuffled ``permutations`` times, seeded so a rerun gives
    the same p) measures exactly that. It only runs when the pressure and effect rules already pass.
    """
    xa, ya = _clean_pairs(x, y)
    corr = correlate(xa, ya)
    fit = linear_fit(xa, ya)
    metric_p95 = percentile(list(xa), rules.pressure_percentile)
    high = xa > rules.pressure_threshold
    high_n, low_n = int(high.sum()), int((~high).sum())
    p_high = float(np.percentile(ya[high], 95)) if high_n else None
    p_low = float(np.percentile(ya[~high], 95)) if low_n else None
    ratio: float | None = None
    if p_high is not None and p_low is not None:
        ratio = p_high / p_low if p_low > 0 else (math.inf if p_high > 0 else 1.0)
    reasons: list[str] = []
    if xa.size < rules.min_n:
        reasons.append(f"only {xa.size} pairs (need {rules.min_n})")
    if corr is None:
        reasons.append("no variation to correlate")
    elif corr.spearman <= rules.min_rho:
        reasons.append(f"no positive association (rho = {corr.spearman:.2f})")
    if metric_p95 is None or metric_p95 <= rules.pressure_threshold:
        shown = "n/a" if metric_p95 is None else f"{metric_p95:.0f} %"
        reasons.append(f"no real pressure (p{rules.pressure_percentile:g} = {shown} <= {rules.pressure_threshold:g} %)")
    if high_n < rules.min_side or low_n < rules.min_side:
        reasons.append(f"too few pairs on one side of {rules.pressure_threshold:g} % ({high_n} above, {low_n} below; need {rules.min_side})")
    elif ratio is None or ratio < rules.min_ratio:
        shown = "n/a" if ratio is None else f"{ratio:.2f}x"
        reasons.append(f"small effect ({shown} < {rules.min_ratio:g}x)")
    effect_p: float | None = None
    if not reasons:
        effect_p = tail_ratio_test(ya, high, permutations=rules.permutations)
        if effect_p >= rules.alpha:
            reasons.append(f"effect not significant (permutation p = {effect_p:.2g} >= {rules.alpha:g})")
    return PairAssessment(
        correlation=corr,
        fit=fit,
        metric_p95=metric_p95,
        high_n=high_n,
        low_n=low_n,
        target_p95_high=p_high,
        target_p95_low=p_low,
        ratio=ratio,
        effect_p=effect_p,
        flagged=not reasons,
        reasons=tuple(reasons),
    )


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


def effect_sentence(*, metric_label: str, target_label: str, threshold: float, ratio: float | None) -> str:
    """Plain words for a finding, e.g. "when CPU > 85 % queue delay p95 is 4.1x higher"."""
    if ratio is None:
        return f"{target_label} p95 could not be compared above and below {metric_label} {threshold:g} %"
    if math.isinf(ratio):
        return f"when {metric_label} > {threshold:g} % {target_label} p95 is above zero, and zero otherwise"
    return f"when {metric_label} > {threshold:g} % {target_label} p95 is {ratio:.1f}x higher"


# --- Queueing: Erlang C / M/M/c ----------------------------------------------------------------


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C).

    ``offered_load`` a = lambda / mu in Erlangs. Computed through the Erlang B recursion, which is
    numerically stable for thousands of servers. Returns 1.0 for an unstable queue (a >= c).
    """
    if servers < 1:
        raise ValueError("servers must be >= 1")
    if offered_load < 0:
        raise ValueError("offered_load must be >= 0")
    if offered_load == 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    b = erlang_b(servers, offered_load)
    return servers * b / (servers - offered_load * (1 - b))


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c (Erlang B).

    Up to 20 servers: the classic stable recursion B(k) = a B(k-1) / (k + a B(k-1)). Beyond: the
    identity B = Poisson pmf(c; a) / Poisson cdf(c; a), in closed form through lgamma and the
    regularised incomplete gamma function, so a page sizing thousands of job slots stays O(1).
    """
    if offered_load == 0:
        return 0.0
    if servers <= 20:
        b = 1.0
        for k in range(1, servers + 1):
            b = offered_load * b / (k + offered_load * b)
        return b
    log_pmf = servers * math.log(offered_load) - offered_load - math.lgamma(servers + 1)
    cdf = float(special.gammaincc(servers + 1, offered_load))
    return math.exp(log_pmf) / cdf if cdf > 0 else 1.0


def mmc_mean_wait(*, arrival_rate: float, service_time: float, servers: int) -> float:
    """Mean time in queue (seconds) of an M/M/c queue; inf when unstable."""
    a = arrival_rate * service_time
    if a >= servers:
        return math.inf
    if arrival_rate == 0:
        return 0.0
    mu = 1.0 / service_time
    return erlang_c(servers, a) / (servers * mu - arrival_rate)


def mmc_wait_quantile(*, arrival_rate: float, service_time: float, servers: int, q: float = 0.95) -> float:
    """The q-quantile of the waiting time in queue (seconds) of an M/M/c queue.

    P(W > t) = C(c, a) * exp(-(c*mu - lambda) * t), so the quantile is 0 when C <= 1 - q and
    ln(C / (1 - q)) / (c*mu - lambda) otherwise; inf when the queue is unstable (a >= c).
    """
    if not 0 < q < 1:
        raise ValueError("q must be in (0, 1)")
    if service_time <= 0:
        raise ValueError("service_time must be > 0")
    if arrival_rate <= 0:
        return 0.0
    a = arrival_rate * service_time
    if a >= servers:
        return math.inf
    c_prob = erlang_c(servers, a)
    if c_prob <= 1 - q:
        return 0.0
    return math.log(c_prob / (1 - q)) / (servers / service_time - arrival_rate)


def smallest_servers(*, arrival_rate: float, service_time: float, target_seconds: float, q: float = 0.95, limit: int = 1_000_000) -> int:
    """The smallest c whose M/M/c waiting-time q-quantile is <= target_seconds."""
    if arrival_rate <= 0:
        return 1
    c = max(1, math.floor(arrival_rate * service_time) + 1)
    while c <= limit:
        if mmc_wait_quantile(arrival_rate=arrival_rate, service_time=service_time, servers=c, q=q) <= target_seconds:
            return c
        c += 1
    raise ValueError("no server count up to the limit meets the target")


def poll_wait_quantile(workers: int, q: float = 0.95, interval: float = POLL_INTERVAL_SECONDS) -> float:
    """Time until the first of ``workers`` independent pollers polls: each worker's next poll is
    uniform over one interval, so P(wait > t) = (1 - t/interval)^k and the quantile is
    interval * (1 - (1 - q)^(1/k))."""
    if workers < 1:
        return math.inf
    return interval * (1 - (1 - q) ** (1 / workers))


@dataclass(frozen=True)
class WorkerRecommendation:
    workers: int  # recommended members (online) for the target
    binding: str  # which constraint decided it: "queue", "pickup" or "minimum"
    p95_at: float  # modelled p95 queue delay (s) with that many workers
    p95_without_one: float  # with one worker fewer (inf when that leaves none)
    offered_load: float  # Erlangs (lambda * mean service time)
    slots_per_worker: int
    method: str


def model_queue_p95(*, workers: int, arrival_rate: float, service_time: float, slots_per_worker: int) -> float:
    """Modelled p95 queue delay (s) of a group: poll wait p95 plus the M/M/c wait p95 with
    c = workers * slots (a conservative sum of the two quantiles), inf with no workers, or when the
    arrivals exceed what the workers can pick up (4 jobs per 30-s poll each)."""
    if workers < 1:
        return math.inf
    if arrival_rate >= workers * JOBS_PER_POLL / POLL_INTERVAL_SECONDS:
        return math.inf
    queue = mmc_wait_quantile(arrival_rate=arrival_rate, service_time=service_time, servers=workers * slots_per_worker, q=0.95) if service_time > 0 else 0.0
    return poll_wait_quantile(workers) + queue


def recommend_workers(
    *,
    arrival_rate: float,
    service_time: float,
    target_p95_seconds: float,
    slots_per_worker: int = MAX_CONCURRENT_JOBS_PER_WORKER,
    max_pickup_utilisation: float = 0.8,
    minimum: int = 2,
) -> WorkerRecommendation:
    """Smallest number of online workers meeting a p95 queue-delay target.

    Three constraints, the largest wins: (queue) the modelled p95 queue delay (poll wait + M/M/c
    wait with ``slots_per_worker`` job slots per worker) is <= the target; (pickup) arrivals stay
    below ``max_pickup_utilisation`` of the documented pickup rate (4 jobs per 30-s poll per worker);
    (minimum) at least ``minimum`` workers so one failure does not stop the group (Microsoft
    recommends several workers per group for availability).
    """
    if target_p95_seconds <= 0:
        raise ValueError("target must be > 0 seconds")
    if arrival_rate < 0 or service_time < 0:
        raise ValueError("rates must be >= 0")
    pickup = math.ceil(arrival_rate / (max_pickup_utilisation * JOBS_PER_POLL / POLL_INTERVAL_SECONDS)) if arrival_rate > 0 else 0
    candidates = {"minimum": minimum, "pickup": pickup}
    queue_workers = None
    # Poll wait alone must fit under the target; search upward (it shrinks as workers grow).
    for k in range(max(1, pickup), 100_000):
        if model_queue_p95(workers=k, arrival_rate=arrival_rate, service_time=service_time, slots_per_worker=slots_per_worker) <= target_p95_seconds:
            queue_workers = k
            break
    if queue_workers is None:
        raise ValueError("target cannot be met: it is below the time a poll takes to arrive")
    candidates["queue"] = queue_workers
    # On a tie, name the constraint that forced the others: the queue search starts at the pickup count.
    priority = {"pickup": 2, "queue": 1, "minimum": 0}
    binding = max(candidates, key=lambda name: (candidates[name], priority[name]))
    workers = candidates[binding]
    method = (
        "M/M/c: Poisson arrivals at the measured peak rate, exponential service with the measured mean "
        f"duration, c = workers x {slots_per_worker} job slots; p95 queue delay = p95 of the wait for the "
        "next poll (each worker polls every 30 s) + p95 of the Erlang C wait; pickup capped at "
        f"{max_pickup_utilisation:.0%} of 4 jobs per 30 s per worker; at least {minimum} workers."
    )
    return WorkerRecommendation(
        workers=workers,
        binding=binding,
        p95_at=model_queue_p95(workers=workers, arrival_rate=arrival_rate, service_time=service_time, slots_per_worker=slots_per_worker),
        p95_without_one=model_queue_p95(workers=workers - 1, arrival_rate=arrival_rate, service_time=service_time, slots_per_worker=slots_per_worker),
        offered_load=arrival_rate * service_time,
        slots_per_worker=slots_per_worker,
        method=method,
    )


# --- Forecast of saturation ---------------------------------------------------------------------

FORECAST_METHOD = (
    "Ordinary least squares line through the daily values; 95 % Student-t prediction interval "
    "(y +/- t * s * sqrt(1 + 1/n + (x - mean x)^2 / Sxx)). The saturation date is where the line "
    "crosses the threshold; the range is where the interval's upper and lower edges cross it. "
    "Assumes a steady linear trend: it ignores step changes, holidays and growth that accelerates."
)


@dataclass(frozen=True)
class Forecast:
    n: int
    slope_per_day: float
    intercept: float
    threshold: float
    day_crossing: float | None  # days from the first point where the fitted line reaches the threshold
    day_earliest: float | None  # where the upper edge of the interval reaches it
    day_latest: float | None  # where the lower edge reaches it (None: not within the horizon)
    horizon_days: float
    band: tuple[tuple[float, float, float, float], ...]  # (day, fit, lower, upper) over history + horizon
    saturated_now: bool = False  # the fitted value on the last day is already at or above the threshold
    method: str = FORECAST_METHOD
    note: str = ""


def _first_crossing(days: np.ndarray, values: np.ndarray, threshold: float) -> float | None:
    above = np.nonzero(values >= threshold)[0]
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(days[0])
    d0, d1, v0, v1 = days[i - 1], days[i], values[i - 1], values[i]
    return float(d0 + (threshold - v0) * (d1 - d0) / (v1 - v0))


def forecast_saturation(
    days: Sequence[float],
    values: Sequence[float],
    *,
    threshold: float,
    horizon_days: float = 90.0,
    confidence: float = 0.95,
    min_points: int = 5,
) -> Forecast | None:
    """Linear trend of daily values with a prediction interval, and when it reaches ``threshold``.

    ``days`` are day offsets (0 = first day). None when there are fewer than ``min_points`` days
    (a line through 3 points says nothing honest about next month).
    """
    xa, ya = _clean_pairs(list(days), list(values))
    n = int(xa.size)
    if n < min_points or np.ptp(xa) == 0:
        return None
    res = stats.linregress(xa, ya)
    resid = ya - (res.intercept + res.slope * xa)
    s = float(np.sqrt(np.sum(resid**2) / (n - 2))) if n > 2 else 0.0
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 2))
    xbar = float(xa.mean())
    sxx = float(np.sum((xa - xbar) ** 2))
    last = float(xa.max())
    grid = np.linspace(float(xa.min()), last + horizon_days, 200)
    fit = res.intercept + res.slope * grid
    half = t * s * np.sqrt(1 + 1 / n + (grid - xbar) ** 2 / sxx)
    lower, upper = fit - half, fit + half
    future = grid >= last
    saturated_now = bool(res.intercept + res.slope * last >= threshold)
    note = ""
    if saturated_now:
        note = "already at or above the threshold on the trend line"
    elif res.slope <= 0:
        note = "flat or falling trend: no saturation expected on this trend"
    return Forecast(
        n=n,
        slope_per_day=float(res.slope),
        intercept=float(res.intercept),
        threshold=threshold,
        day_crossing=_first_crossing(grid[future], fit[future], threshold),
        day_earliest=_first_crossing(grid[future], upper[future], threshold),
        day_latest=_first_crossing(grid[future], lower[future], threshold),
        horizon_days=horizon_days,
        band=tuple((float(d), float(f), float(lo), float(hi)) for d, f, lo, hi in zip(grid, fit, lower, upper)),
        saturated_now=saturated_now,
        note=note,
    )
