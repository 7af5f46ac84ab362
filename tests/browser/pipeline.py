"""A fleet built through the real pipeline: the local Azure emulator (real SDK clients over HTTPS),
the polling services, the status refresh and the rollups, exactly as the Celery tasks run them."""
from __future__ import annotations

from datetime import datetime, timedelta

from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.polling import close_clients, poll_account_once
from workers.fleet.status import refresh_statuses
from workers.models import AutomationAccount


def register(emulator, *, name: str = "emulator") -> AutomationAccount:
    account, _created = add_account_from_connection_file(emulator.connection_file, name=name)
    return account


def poll_and_refresh(account: AutomationAccount, *, now: datetime) -> list:
    """One full poll of the account at ``now`` and the status refresh that follows it.

    Adapter clients are cached per account id; a test database reuses ids across tests, so the
    cache is cleared first to never talk to a previous test's emulator."""
    close_clients()
    outcomes = poll_account_once(account.pk, now=now)
    failed = [o for o in outcomes if not o.ok]
    assert not failed, f"polls failed: {failed}"
    refresh_statuses(account.pk, now=now)
    return outcomes


def roll_up(*, now: datetime, hours: int = 26) -> None:
    """What the beat's periodic tasks precompute for the pages: hourly utilization and job
    rollups, the capacity/correlation runs, and the alert outbox."""
    from workers.alerting.outbox import process_outbox
    from workers.capacity.correlation import compute_all
    from workers.fleet.rollups import rollup_utilization
    from workers.latency.rollups import rollup_jobs

    since = now - timedelta(hours=hours)
    rollup_utilization(since, now)
    rollup_jobs(since, now, now=now)
    compute_all(now)
    process_outbox(now=now)
