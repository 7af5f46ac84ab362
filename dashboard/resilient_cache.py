"""A Redis cache that degrades to "no cache" instead of failing the request.

Every cached value in this project is an optimisation (aggregates computed once per jobs poll, see
``workers.fleet.selectors.job_stats.per_jobs_poll``); the database is the source of truth. So when
Redis is down or slow, a read is a miss, a write is dropped, and the page is computed from the
database. The outage is logged once per process when it starts and once when it ends, not per
request. After a failure the cache is not tried again for ``DOWN_RETRY_SECONDS`` (an OPTIONS key,
default 5), so a Redis that times out (not just refuses) costs one timeout per interval, not one
per cache call.

Configured in ``dashboard/settings.py`` (``CACHES``) when ``REDIS_URL`` is set.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


class _Outage:
    """Per process and Redis location: is it down, and when may we try again. Shared by the
    per-thread cache instances Django creates, so the outage is logged once per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.retry_at = 0.0


_OUTAGES: dict[str, _Outage] = {}
_OUTAGES_LOCK = threading.Lock()


def _outage_for(location: str) -> _Outage:
    with _OUTAGES_LOCK:
        return _OUTAGES.setdefault(location, _Outage())


class ResilientRedisCache(RedisCache):
    """``RedisCache`` whose connection errors are misses (reads) or no-ops (writes), logged once."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        params = dict(params)
        options = dict(params.get("OPTIONS") or {})
        self.down_retry_seconds = float(options.pop("DOWN_RETRY_SECONDS", 5))
        # Bounded waits: a Redis that stops answering must not hold a request for long.
        options.setdefault("socket_connect_timeout", 1)
        options.setdefault("socket_timeout", 1)
        params["OPTIONS"] = options
        super().__init__(server, params)
        self._outage = _outage_for(server if isinstance(server, str) else ",".join(server))
        self.clock: Callable[[], float] = time.monotonic

    # --- the breaker ---------------------------------------------------------------------------

    def available(self) -> bool:
        """False while a recent failure says Redis is down (until the retry interval has passed)."""
        outage = self._outage
        return not outage.down or self.clock() >= outage.retry_at

    def _failed(self, exc: BaseException) -> None:
        outage = self._outage
        with outage.lock:
            outage.retry_at = self.clock() + self.down_retry_seconds
            if outage.down:
                return
            outage.down = True
        log.warning("cache unavailable, serving from the database until it is back: %s: %s", type(exc).__name__, exc)

    def _succeeded(self) -> None:
        outage = self._outage
        if not outage.down:
            return
        with outage.lock:
            if not outage.down:
                return
            outage.down = False
        log.warning("cache reachable again")

    def _call(self, fallback: Any, operation: Callable[[], Any]) -> Any:
        if not self.available():
            return fallback
        try:
            result = operation()
        except CACHE_ERRORS as exc:
            self._failed(exc)
            return fallback
        self._succeeded()
        return result

    def ping(self) -> bool:
        """True when Redis answers now (ignores the breaker; /healthz uses it)."""
        try:
            ok = bool(self._cache.get_client(write=True).ping())
        except CACHE_ERRORS as exc:
            self._failed(exc)
            return False
        self._succeeded()
        return ok

    # --- the cache API ---------------------------------------------------------------------------

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return bool(self._call(False, lambda: super(ResilientRedisCache, self).add(key, value, timeout, version)))

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._call(default, lambda: super(ResilientRedisCache, self).get(key, default, version))

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._call(None, lambda: super(ResilientRedisCache, self).set(key, value, timeout, version))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return bool(self._call(False, lambda: super(ResilientRedisCache, self).touch(key, timeout, version)))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return bool(self._call(False, lambda: super(ResilientRedisCache, self).delete(key, version)))

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        keys = list(keys)
        return dict(self._call({}, lambda: super(ResilientRedisCache, self).get_many(keys, version)))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return bool(self._call(False, lambda: super(ResilientRedisCache, self).has_key(key, version)))

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        failed = list(data)
        return list(self._call(failed, lambda: super(ResilientRedisCache, self).set_many(data, timeout, version)))

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        keys = list(keys)
        self._call(None, lambda: super(ResilientRedisCache, self).delete_many(keys, version))

    def clear(self) -> None:
        self._call(None, lambda: super(ResilientRedisCache, self).clear())
