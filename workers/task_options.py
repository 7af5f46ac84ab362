"""Celery options every task of every capability shares.

A lost or refused database connection (PostgreSQL restarting, a failover) is retried with
exponential backoff and full jitter (up to 5 s, 10 s, 20 s ..., at most ``MAX_RETRIES`` times). The
writes are transactions or idempotent upserts, so a retry after a failure half-way finds nothing
half-written.
"""
from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError

MAX_RETRIES = 3
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 120.0

DB_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": BACKOFF_BASE_SECONDS,
    "retry_backoff_max": BACKOFF_MAX_SECONDS,
    "retry_jitter": True,
    "max_retries": MAX_RETRIES,
}
