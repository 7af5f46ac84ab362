"""Shared test setup.

Tests that need PostgreSQL or Redis skip with a clear reason when the service is missing, unless
``HRW_REQUIRE_SERVICES=1`` (set by ``.ci/run``), which turns those skips into failures.
Fixture modules live in ``tests/fixtures/`` and are registered below.
"""
from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.emulator",
    "tests.fixtures.celery",
    "tests.fixtures.smtp",
    "tests.fixtures.web",
]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: cached aggregates are keyed on database state, and row
    ids repeat across tests once a transaction is rolled back. And with a full ARM read budget: a
    429 with a long Retry-After in one test must not defer the next test's requests (the process-local
    bucket lives as long as the process; the Redis one is in the flushed cache database)."""
    from django.core.cache import cache

    from workers.azure.throttle import reset_throttles

    reset_throttles()

    try:
        cache.clear()
    except Exception:  # noqa: BLE001 - Redis down: the tests that need it fail on their own
        pass
