"""The ARM read budget end to end: many concurrent polls through the real adapter and SDK against an
emulator with a small ARM token bucket. Nothing is lost (every listing complete against the
simulation's ground truth), 429s are honoured (the shared bucket blocks until Retry-After), and a
client budget no larger than the service's bucket avoids 429s altogether."""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from workers.azure.client import AzureClient
from workers.azure.connection import connection_from_file
from workers.azure.errors import AzureTransientError
from workers.azure.throttle import ArmThrottle, BucketSpec, LocalBucket
from workers.emulator.testing import EmulatorHandle
from workers.fleet.polling import FANOUT_BURST_OK, fanout_countdowns

THREADS = 6
ATTEMPTS = 8  # like a Celery task retried after a transient error


def _truth(handle: EmulatorHandle) -> dict[str, set[str]]:
    sim = handle.simulation
    return {g.name: {sim.workers[i].name for i in g.members} for g in sim.groups}


def _hammer(handle: EmulatorHandle, throttle: ArmThrottle) -> tuple[list[dict[str, set[str]]], int]:
    """THREADS "worker processes" (one client each, one shared budget) list every group's workers."""
    conn = dataclasses.replace(connection_from_file(handle.connection_file), retry_total=2)
    results: list[dict[str, set[str]]] = []
    transient = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal transient
        seen: dict[str, set[str]] = {}
        with AzureClient(conn, throttle=throttle) as client:
            for group in handle.simulation.groups:
                for _ in range(ATTEMPTS):
                    try:
                        seen[group.name] = {w.name for w in client.list_workers(group.name)}
                        break
                    except AzureTransientError:
                        with lock:
                            transient += 1
        with lock:
            results.append(seen)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results, transient


def _small_bucket(make_emulator: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    handle = make_emulator(seed=9, groups=4, workers=24, page_size=3, scenarios=False)
    handle.server.configure_arm_throttle(8, 20.0)
    return handle


def test_concurrent_polls_lose_nothing_and_honour_429s(make_emulator) -> None:
    handle = _small_bucket(make_emulator)
    # Our budget far above the service's: the service's 429s must do the limiting.
    throttle = ArmThrottle(LocalBucket(BucketSpec(1000, 1000)), max_wait=30)
    results, _transient = _hammer(handle, throttle)
    assert results == [_truth(handle)] * THREADS  # 0 rows lost
    assert handle.server.throttled_count > 0 and throttle.throttled > 0  # 429s happened, and were seen
    assert throttle.waited_seconds > 0  # ...and honoured: the shared bucket waited out Retry-After


def test_a_budget_within_the_services_bucket_avoids_429s(make_emulator) -> None:
    handle = _small_bucket(make_emulator)
    throttle = ArmThrottle(LocalBucket(BucketSpec(6, 15.0)), max_wait=30)
    results, transient = _hammer(handle, throttle)
    assert results == [_truth(handle)] * THREADS
    assert handle.server.throttled_count == 0 and transient == 0
    assert throttle.waited_seconds > 0  # the budget, not the service, slowed the burst down


def test_the_remaining_reads_header_slows_us_before_a_429(make_emulator) -> None:
    handle = make_emulator(seed=9, groups=2, workers=6, scenarios=False)
    handle.server.configure_arm_throttle(5, 0.2)
    bucket = LocalBucket(BucketSpec(250, 25))  # Azure's defaults: we would happily burst 250
    throttle = ArmThrottle(bucket, max_wait=0)
    conn = connection_from_file(handle.connection_file)
    with AzureClient(conn, throttle=throttle) as client:
        for _ in range(5):
            client.list_groups()
        with pytest.raises(AzureTransientError, match="ARM read budget exhausted"):
            client.list_groups()  # the service said 0 remaining: we defer instead of earning a 429
    assert handle.server.throttled_count == 0


def test_fan_out_is_spread_over_the_interval() -> None:
    offsets = fanout_countdowns(500, 30)
    assert offsets[0] == 0 and offsets[-1] <= 24 and len(offsets) == 500
    per_second = max(sum(1 for o in offsets if s <= o < s + 1) for s in range(24))
    assert per_second <= 25  # within ARM's refill of 25 reads per second
    assert fanout_countdowns(FANOUT_BURST_OK, 30) == [0.0] * FANOUT_BURST_OK  # a small fan-out goes at once
    assert fanout_countdowns(0, 30) == []
