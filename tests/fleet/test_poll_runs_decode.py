"""A truncated (malformed) answer is a transient error: the poll is retried and succeeds.

Before, a body that could not be decoded failed the poll for good (not retried), so one malformed
groups response paged BLIND at once. Through the real SDK against the emulator's ``malformed`` fault
(a 200 whose JSON is cut short), then through a REAL Celery worker on Redis: the task retries it like
any other transient error. Effects are awaited with a deadline, never a fixed sleep.
"""
from __future__ import annotations

import pytest

from tests.fixtures.celery import wait_for
from workers.azure.errors import AzureTransientError
from workers.fleet import polling, tasks
from workers.fleet.accounts import add_account_from_connection_file
from workers.models import AutomationAccount, PollRun


def _account(emu) -> AutomationAccount:
    return add_account_from_connection_file(emu.connection_file)[0]


def _inventory(account: AutomationAccount) -> None:
    """Groups and workers first: Log Analytics is asked about our machines only, so it needs them."""
    polling.poll_groups(account.pk)
    for group_id in account.groups.values_list("pk", flat=True):
        polling.poll_workers(account.pk, group_id)


@pytest.mark.django_db
@pytest.mark.parametrize("route", ["arm", "logs"])
def test_a_malformed_body_fails_the_poll_as_transient(make_emulator, route):
    emu = make_emulator(seed=5, groups=2, workers=4, history_days=1 / 24, scenarios=False)
    account = _account(emu)
    if route == "logs":
        _inventory(account)
    emu.inject_fault("malformed", count=1, route=route)
    poll = polling.poll_groups if route == "arm" else polling.poll_logs
    with pytest.raises(AzureTransientError, match="could not be decoded|malformed"):
        poll(account.pk, now=emu.clock.now())
    failed = PollRun.objects.get(ok=False, kind__in=["groups", "heartbeat"])
    assert failed.finished_at is not None and failed.error.startswith("transient: ")


@pytest.fixture
def live(make_emulator, monkeypatch) -> tuple[AutomationAccount, object]:
    monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0.2)
    emu = make_emulator(seed=5, groups=3, workers=6, history_days=1 / 24, page_size=4, scenarios=False, realtime=True, start=None)
    return _account(emu), emu


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_malformed_groups_answer_is_retried_and_the_poll_succeeds(celery_worker, live):
    account, emu = live
    emu.inject_fault("malformed", count=1, route="arm")
    tasks.poll_groups.delay(account.pk)
    wait_for(lambda: PollRun.objects.filter(kind="groups", ok=True).exists(), "a successful retry of the groups poll")
    first = PollRun.objects.filter(kind="groups").order_by("started_at", "pk").first()
    assert first.ok is False and "could not be decoded" in first.error
    # The retry fanned out as usual: every group's workers were polled.
    wait_for(lambda: PollRun.objects.filter(kind="workers", ok=True).count() == 3, "the worker polls")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_malformed_log_analytics_answer_is_retried_and_the_poll_succeeds(celery_worker, live):
    account, emu = live
    _inventory(account)
    emu.inject_fault("malformed", count=1, route="logs")
    tasks.poll_logs.delay(account.pk)
    wait_for(lambda: PollRun.objects.filter(kind="heartbeat", ok=True).exists(), "a successful retry of the heartbeat query")
    assert PollRun.objects.filter(kind="heartbeat", ok=False).count() == 1
