"""The ARM read budget (workers/azure/throttle.py): the bucket's arithmetic on a frozen clock, waiting
and deferring, learning from 429s and the remaining-reads header, and the Redis bucket shared by two
processes."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from workers.azure.errors import AzureTransientError, ThrottleDeferred
from workers.azure.throttle import (
    REMAINING_READS_HEADER,
    ArmThrottle,
    BucketSpec,
    LocalBucket,
    RedisBucket,
    bucket_key,
    reset_throttles,
    throttle_for,
)

T0 = 1_800_000_000.0


class FrozenClock:
    """A clock that only moves when the throttle "sleeps" (no real waiting in these tests)."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_full_bucket_grants_its_burst_then_asks_to_wait_for_the_refill() -> None:
    bucket = LocalBucket(BucketSpec(capacity=5, refill_per_second=2))
    assert [bucket.take(T0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(T0) == pytest.approx(0.5)  # one token comes back in 1/2 s
    assert bucket.take(T0 + 0.5) == 0.0
    assert bucket.take(T0 + 0.5) > 0


def test_the_bucket_never_holds_more_than_its_capacity() -> None:
    bucket = LocalBucket(BucketSpec(capacity=3, refill_per_second=10))
    bucket.take(T0)
    later = T0 + 3600
    assert [bucket.take(later) for _ in range(3)] == [0.0] * 3
    assert bucket.take(later) > 0


def test_acquire_waits_for_a_token_within_the_allowed_wait() -> None:
    clock = FrozenClock()
    throttle = ArmThrottle(LocalBucket(BucketSpec(2, 1)), max_wait=5, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        throttle.acquire()
    assert clock.slept == [pytest.approx(1.0)] and throttle.waited_seconds == pytest.approx(1.0)


def test_acquire_defers_instead_of_waiting_past_the_limit() -> None:
    clock = FrozenClock()
    throttle = ArmThrottle(LocalBucket(BucketSpec(1, 0.1)), max_wait=2, clock=clock, sleep=clock.sleep)
    throttle.acquire()
    with pytest.raises(ThrottleDeferred) as info:
        throttle.acquire()
    assert isinstance(info.value, AzureTransientError)  # tasks retry it later; it is not an outage
    assert info.value.retry_after == 10 and clock.slept == []


def test_a_429_blocks_the_bucket_until_its_retry_after() -> None:
    clock = FrozenClock()
    bucket = LocalBucket(BucketSpec(100, 100))
    throttle = ArmThrottle(bucket, max_wait=60, clock=clock, sleep=clock.sleep)
    throttle.observe(429, {"Retry-After": "7"})
    assert bucket.take(T0 + 6.9) > 0  # still blocked although the refill would allow it
    throttle.acquire()
    assert clock.now == pytest.approx(T0 + 7) and throttle.throttled == 1


def test_the_remaining_reads_header_caps_our_tokens() -> None:
    bucket = LocalBucket(BucketSpec(250, 25))
    throttle = ArmThrottle(bucket, max_wait=0, clock=lambda: T0)
    throttle.observe(200, {REMAINING_READS_HEADER: "2"})
    throttle.acquire()
    throttle.acquire()
    with pytest.raises(ThrottleDeferred):
        throttle.acquire()


def test_a_garbled_remaining_header_is_ignored() -> None:
    bucket = LocalBucket(BucketSpec(3, 1))
    throttle = ArmThrottle(bucket, max_wait=0, clock=lambda: T0)
    for value in ("", "lots", "nan"):
        throttle.observe(200, {REMAINING_READS_HEADER: value})
    for _ in range(3):
        throttle.acquire()


def test_throttles_are_per_subscription_and_principal(settings) -> None:
    settings.REDIS_URL = ""
    settings.ARM_THROTTLE_ENABLED = True
    reset_throttles()
    try:
        a = throttle_for("https://management.azure.com", "sub-1", "app-1")
        assert throttle_for("https://management.azure.com", "SUB-1", "app-1") is a
        assert throttle_for("https://management.azure.com", "sub-1", "app-2") is not a
        assert isinstance(a.bucket, LocalBucket) and a.bucket.spec == BucketSpec(250.0, 25.0)
        settings.ARM_THROTTLE_ENABLED = False
        reset_throttles()
        assert throttle_for("https://management.azure.com", "sub-1", "app-1") is None
    finally:
        reset_throttles()


def test_a_bucket_key_holds_no_secret_or_raw_id() -> None:
    key = bucket_key("https://management.azure.com", "5e0b7f2a-sub", "client-id")
    assert key.startswith("hrw:arm-reads:") and "5e0b7f2a" not in key and "client" not in key


# --- Redis: one bucket for every worker process -------------------------------------------------

_CHILD = """
import sys, redis
from workers.azure.throttle import BucketSpec, RedisBucket
url, key, now, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
bucket = RedisBucket(BucketSpec(200, 0.5), redis.Redis.from_url(url), key)
print(sum(1 for _ in range(n) if bucket.take(now) == 0.0))
"""


@pytest.mark.redis
def test_two_processes_share_one_redis_bucket(redis_url: str) -> None:
    import redis

    key = f"hrw:test-bucket:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    try:
        # Two processes, 150 takes each, on a frozen clock: the shared bucket grants its 200 once.
        children = [
            subprocess.Popen([sys.executable, "-c", _CHILD, redis_url, key, str(T0), "150"], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        granted = [int(child.communicate(timeout=60)[0].strip()) for child in children]
        assert all(child.returncode == 0 for child in children)
        assert sum(granted) == 200 and min(granted) > 0
        here = RedisBucket(BucketSpec(200, 0.5), client, key)
        assert here.take(T0) == pytest.approx(2.0)  # empty: the next token in 1 / 0.5 s
        assert here.take(T0 + 2) == 0.0  # refilled by the clock the callers pass
        here.block(T0 + 30, T0 + 2)
        assert here.take(T0 + 10) == pytest.approx(20.0)  # a 429 seen by one process blocks all
        assert client.pttl(key) > 0  # an idle bucket expires
    finally:
        client.delete(key)


def test_the_redis_bucket_falls_back_to_a_local_one_when_redis_is_down() -> None:
    import redis

    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    bucket = RedisBucket(BucketSpec(2, 1), down, "hrw:test-bucket:down")
    assert [bucket.take(T0), bucket.take(T0)] == [0.0, 0.0]
    assert bucket.take(T0) > 0
