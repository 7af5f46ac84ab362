"""Pure queueing models for capacity planning: Erlang B/C, the M/M/c queue and the worker recommendation.

An M/M/c queue: Poisson arrivals, exponential service times, c identical servers, first come first
served. Erlang C gives the probability that a job waits; the waiting time of a job that waits is
exponential with rate c*mu - lambda, so any percentile has a closed form. A job also waits for the
next poll of a worker; ``model_queue_p95`` adds that wait.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

# Documented limits (Microsoft Learn, "Troubleshoot extension-based Hybrid Runbook Worker issues" and
# "Azure Automation service limits"): a worker polls every 30 s and "can generally pick up four jobs
# per ping"; a single hybrid worker runs at most 50 jobs concurrently.
POLL_INTERVAL_SECONDS = 30.0
JOBS_PER_POLL = 4
MAX_CONCURRENT_JOBS_PER_WORKER = 50


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
