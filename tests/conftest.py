"""Shared test setup.

Tests that need PostgreSQL or Redis skip with a clear reason when the service is missing, unless
``HRW_REQUIRE_SERVICES=1`` (set by ``.ci/run``), which turns those skips into failures.
Fixture modules live in ``tests/fixtures/`` and are registered below.
"""
from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.emulator",
    "tests.fixtures.celery",
    "tests.fixtures.smtp",
]
