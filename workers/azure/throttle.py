"""The ARM read budget: one token bucket per subscription and principal, shared by every Celery worker.

Azure Resource Manager throttles reads with a token bucket per subscription, principal and region
(Learn, "Understand how Azure Resource Manager throttles requests": reads 250 tokens, refilled at 25
per second). Every Celery worker of a deployment uses the same principal, so their requests drain one
bucket: this module keeps our own copy of it, in Redis (an atomic Lua script) when ``REDIS_URL`` is
set, otherwise in the process (a process-local bucket is only right for a single worker process).

* Before each ARM request (``ArmThrottle.acquire``) a token is taken; without one the caller waits
  at most ``ARM_THROTTLE_MAX_WAIT_SECONDS`` and then gets ``ThrottleDeferred`` (a transient error:
  the poll is retried later and is not recorded as an outage).
* After each response (``ArmThrottle.observe``): a 429's ``Retry-After`` blocks the bucket for every
  worker until then, and ``x-ms-ratelimit-remaining-subscription-reads`` caps our tokens at what ARM
  says is left (another client of the same principal spends them too), so we slow down before a 429.

Pure of any SDK; ``workers.azure.client`` calls it from the SDK's request/response hooks.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from workers.azure.errors import ThrottleDeferred, retry_after_header
from workers.rules.arm_budget import bucket_key, stats_key

logger = logging.getLogger(__name__)

REMAINING_READS_HEADER = "x-ms-ratelimit-remaining-subscription-reads"
# A 429 without a usable Retry-After still blocks the bucket this long.
DEFAULT_RETRY_AFTER_SECONDS = 5.0
# A bucket that cannot refill (refill 0) answers "wait this long".
_NEVER = 3600.0


@dataclass(frozen=True)
class BucketSpec:
    capacity: float  # burst: tokens when full
    refill_per_second: float


class Bucket(Protocol):
    """The shared state. ``now`` is epoch seconds from the caller's clock (a frozen one in tests)."""

    def take(self, now: float) -> float:
        """Take one token: 0.0 if taken, else the seconds until one is expected (nothing taken)."""

    def block(self, until: float, now: float) -> None:
        """Empty the bucket and give no token before ``until`` (a 429's Retry-After)."""

    def cap(self, remaining: float, now: float) -> None:
        """At most ``remaining`` tokens are left (ARM said so)."""


def _refilled(spec: BucketSpec, tokens: float, ts: float, now: float) -> tuple[float, float]:
    if now > ts:
        return min(spec.capacity, tokens + (now - ts) * spec.refill_per_second), now
    return tokens, ts


def _wait_for_one(spec: BucketSpec, tokens: float) -> float:
    if spec.refill_per_second <= 0:
        return _NEVER
    return max(0.001, (1.0 - tokens) / spec.refill_per_second)


class LocalBucket:
    """The bucket in this process (no Redis): right for one worker process, a fallback otherwise."""

    def __init__(self, spec: BucketSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._tokens = spec.capacity
        self._ts: float | None = None
        self._blocked = 0.0

    def _sync(self, now: float) -> None:
        if self._ts is None:
            self._ts = now
        self._tokens, self._ts = _refilled(self.spec, self._tokens, self._ts, now)

    def take(self, now: float) -> float:
        with self._lock:
            self._sync(now)
            if now < self._blocked:
                return self._blocked - now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return _wait_for_one(self.spec, self._tokens)

    def block(self, until: float, now: float) -> None:
        with self._lock:
            self._sync(now)
            self._tokens = 0.0
            self._blocked = max(self._blocked, until)

    def cap(self, remaining: float, now: float) -> None:
        with self._lock:
            self._sync(now)
            self._tokens = min(self._tokens, max(0.0, remaining))


# One atomic step on the shared bucket (a hash: tokens, ts, blocked). ARGV: capacity, refill per
# second, now (epoch s), op (take | block | cap), argument, key TTL in ms. Returns the wait as text
# (a Lua number would be truncated to an integer in the reply).
_LUA = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local op = ARGV[4]
local arg = tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'blocked')
local tokens = tonumber(s[1]) or cap
local ts = tonumber(s[2]) or now
local blocked = tonumber(s[3]) or 0
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if op == 'take' then
  if now < blocked then
    wait = blocked - now
  elseif tokens >= 1 then
    tokens = tokens - 1
  elseif rate > 0 then
    wait = math.max(0.001, (1 - tokens) / rate)
  else
    wait = 3600
  end
elseif op == 'block' then
  tokens = 0
  if arg > blocked then blocked = arg end
elseif op == 'cap' then
  if arg < 0 then arg = 0 end
  if arg < tokens then tokens = arg end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', ts),
           'blocked', string.format('%.6f', blocked))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return string.format('%.6f', wait)
"""


class RedisBucket:
    """The bucket in Redis, changed only by one Lua script (atomic across every worker process).

    If Redis fails, this process carries on with a local bucket (logged once) rather than stop polling,
    and asks Redis again only after ``REDIS_RETRY_SECONDS`` (a down Redis must not slow every request).
    """

    REDIS_RETRY_SECONDS = 30.0

    def __init__(self, spec: BucketSpec, client: Any, key: str) -> None:
        self.spec = spec
        self.key = key
        self._client = client
        self._script = client.register_script(_LUA)
        self._fallback = LocalBucket(spec)
        self._warned = False
        self._down_until = 0.0  # monotonic
        # Long enough for an idle bucket to refill completely; then the key may go.
        full = spec.capacity / spec.refill_per_second if spec.refill_per_second > 0 else 3600.0
        self._ttl_ms = int(max(60.0, 2 * full) * 1000)

    def _run(self, now: float, op: str, arg: float) -> float | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            reply = self._script(
                keys=[self.key],
                args=[self.spec.capacity, self.spec.refill_per_second, f"{now:.6f}", op, f"{arg:.6f}", self._ttl_ms],
            )
        except Exception as exc:  # noqa: BLE001 - any Redis failure: fall back, never stop polling
            if not self._warned:
                logger.warning("ARM throttle: Redis unavailable (%s); using a process-local bucket", exc)
                self._warned = True
            self._down_until = time.monotonic() + self.REDIS_RETRY_SECONDS
            return None
        self._warned = False
        return float(reply.decode() if isinstance(reply, bytes) else reply)

    def take(self, now: float) -> float:
        wait = self._run(now, "take", 0.0)
        return self._fallback.take(now) if wait is None else wait

    def block(self, until: float, now: float) -> None:
        if self._run(now, "block", until) is None:
            self._fallback.block(until, now)

    def cap(self, remaining: float, now: float) -> None:
        if self._run(now, "cap", remaining) is None:
            self._fallback.cap(remaining, now)


class RedisStats:
    """ARM response counts shared by every process, for ``/metrics``: a Redis hash beside the bucket
    (``<bucket key>:stats``: responses, throttled (429s), remaining (the last remaining-reads header)).
    Best effort: a Redis error loses a count, never a request."""

    def __init__(self, client: Any, key: str) -> None:
        self._client = client
        self.key = stats_key(key)

    def record(self, status: int | None, remaining: float | None) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.hincrby(self.key, "responses", 1)
            if status == 429:
                pipe.hincrby(self.key, "throttled", 1)
            if remaining is not None:
                pipe.hset(self.key, "remaining", f"{remaining:g}")
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - counting must never disturb polling
            logger.debug("ARM stats not recorded: %s", exc)


class ArmThrottle:
    """Takes a token before each ARM request and learns from each response. Thread-safe."""

    def __init__(
        self,
        bucket: Bucket,
        *,
        max_wait: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bucket = bucket
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self.waited_seconds = 0.0  # total time this process waited for tokens (for the logs and tests)
        self.throttled = 0  # 429s seen
        self.stats: RedisStats | None = None  # shared counts for /metrics (set when the bucket is in Redis)

    def acquire(self, *, max_wait: float | None = None) -> None:
        """Take a token, waiting up to ``max_wait`` seconds; else raise ``ThrottleDeferred``."""
        limit = self.max_wait if max_wait is None else max_wait
        waited = 0.0
        while True:
            wait = self.bucket.take(self._clock())
            if wait <= 0:
                return
            if waited + wait > limit:
                raise ThrottleDeferred(
                    f"ARM read budget exhausted: no token within {limit:g} s (next in {wait:.1f} s); deferred",
                    retry_after=math.ceil(wait),
                )
            self._sleep(wait)
            waited += wait
            self.waited_seconds += wait

    def observe(self, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Learn from one ARM response: a 429 blocks everyone until Retry-After; the remaining-reads
        header caps our tokens."""
        now = self._clock()
        if self.stats is not None:
            self.stats.record(status, _float_header(headers, REMAINING_READS_HEADER))
        if status == 429:
            self.throttled += 1
            retry_after = retry_after_header(headers)
            self.bucket.block(now + (retry_after if retry_after is not None else DEFAULT_RETRY_AFTER_SECONDS), now)
            return
        remaining = _header(headers, REMAINING_READS_HEADER)
        if remaining is not None:
            try:
                value = float(remaining)
            except ValueError:
                return
            if math.isfinite(value):
                self.bucket.cap(value, now)


def _float_header(headers: Mapping[str, str] | None, name: str) -> float | None:
    try:
        value = float(_header(headers, name) or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:  # a plain dict in tests; the SDK's headers are case-insensitive already
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    return value


# --- one throttle per subscription and principal, per process --------------------------------------

_throttles: dict[str, ArmThrottle] = {}
_lock = threading.Lock()


def throttle_for(arm_endpoint: str, subscription_id: str, principal: str) -> ArmThrottle | None:
    """This process's throttle for one subscription and principal (None when ARM_THROTTLE is off)."""
    from django.conf import settings

    if not settings.ARM_THROTTLE_ENABLED:
        return None
    key = bucket_key(arm_endpoint, subscription_id, principal)
    with _lock:
        throttle = _throttles.get(key)
        if throttle is None:
            spec = BucketSpec(float(settings.ARM_READS_BUCKET), float(settings.ARM_READS_REFILL_PER_SECOND))
            bucket: Bucket
            if settings.REDIS_URL:
                import redis

                client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
                bucket = RedisBucket(spec, client, key)
            else:
                bucket = LocalBucket(spec)
            throttle = _throttles[key] = ArmThrottle(bucket, max_wait=float(settings.ARM_THROTTLE_MAX_WAIT_SECONDS))
            if settings.REDIS_URL:
                throttle.stats = RedisStats(client, key)
        return throttle


def reset_throttles() -> None:
    """Forget every cached throttle (tests change the settings between cases)."""
    with _lock:
        _throttles.clear()
