"""Checks of our own parts for /healthz and /metrics: the database, the cache, the broker, polling.

Each check answers quickly (bounded timeouts) and never raises; the details of a failure are logged
at debug level only and never shown, since /healthz is public.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from kombu import Connection

from workers.fleet import selectors

log = logging.getLogger(__name__)

_PROBE_KEY = "healthz-probe"


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"; details stay out of a public page
        log.debug("health: database check failed: %s", exc)
        return False


def check_cache() -> bool:
    """Redis answers a PING (ResilientRedisCache), or a local cache stores and returns a value."""
    ping = getattr(cache, "ping", None)
    try:
        if callable(ping):
            return bool(ping())
        cache.set(_PROBE_KEY, 1, timeout=5)
        return cache.get(_PROBE_KEY) == 1
    except Exception as exc:  # noqa: BLE001 - any cache failure means "not working"
        log.debug("health: cache check failed: %s", exc)
        return False


def broker_connection() -> Connection:
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    timeout = float(settings.HEALTHZ_BROKER_TIMEOUT_SECONDS)
    return Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options)


def check_broker() -> bool:
    timeout = float(settings.HEALTHZ_BROKER_TIMEOUT_SECONDS)
    try:
        with broker_connection() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        return True
    except Exception as exc:  # noqa: BLE001 - kombu raises transport-specific errors
        log.debug("health: broker check failed: %s", exc)
        return False


def max_poll_age_seconds() -> int:
    """A poll older than this is stale: HEALTHZ_MAX_POLL_AGE_SECONDS, or STALE_AFTER_INTERVALS x the
    slowest poll interval."""
    if settings.HEALTHZ_MAX_POLL_AGE_SECONDS:
        return int(settings.HEALTHZ_MAX_POLL_AGE_SECONDS)
    slowest = max(settings.POLL_WORKERS_SECONDS, settings.POLL_JOBS_SECONDS, settings.POLL_LOGS_SECONDS)
    return int(settings.STALE_AFTER_INTERVALS * slowest)


@dataclass
class Health:
    database: bool
    cache: bool
    broker: bool
    last_poll_age_seconds: float | None
    max_poll_age_seconds: int
    down: list[str] = field(default_factory=list)

    @property
    def polling(self) -> str:
        if self.last_poll_age_seconds is None:
            return "never" if self.database else "unknown"
        return "ok" if self.last_poll_age_seconds <= self.max_poll_age_seconds else "stale"

    @property
    def status(self) -> str:
        """down: the database is unreachable (nothing can be served); degraded: something else is."""
        if not self.database:
            return "down"
        return "degraded" if self.down else "ok"


def check_all(*, now: datetime | None = None) -> Health:
    now = now or timezone.now()
    database_ok = check_database()
    age: float | None = None
    if database_ok:
        try:
            last = selectors.last_successful_poll_at()
        except Exception as exc:  # noqa: BLE001 - e.g. tables missing before migrate
            log.debug("health: reading the last poll failed: %s", exc)
            last, database_ok = None, False
        if last is not None:
            age = max(0.0, (now - last).total_seconds())
    health = Health(database=database_ok, cache=check_cache(), broker=check_broker(),
                    last_poll_age_seconds=age, max_poll_age_seconds=max_poll_age_seconds())
    health.down = [name for name, ok in (("database", health.database), ("cache", health.cache),
                                         ("broker", health.broker)) if not ok]
    if health.polling in ("stale", "never"):
        health.down.append("polling")
    return health
