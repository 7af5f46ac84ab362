"""The blind alert judges only finished polls, and pages only once its condition held for the grace.

A poll writes its PollRun when it starts (not ok, no finish) and completes it when it ends; a poll
still in flight must never read as a failure. A single failed groups poll (retried seconds later) must
never page either: the alert waits ALERT_BLIND_GRACE_SECONDS from the condition's start, and its email
dates the outage from that start. Real SMTP (aiosmtpd), a frozen clock moved beat by beat.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from tests.alerting.factories import T0, WAIT, go, make_fleet, ok_poll, tick
from tests.fixtures.smtp import text_part
from workers.alerting.blind import blind_reasons
from workers.alerting.incidents import OutboxResult
from workers.fleet.selectors import data_freshness
from workers.models import Alert, AlertKind, AutomationAccount, PollRun

pytestmark = pytest.mark.django_db

GRACE = timedelta(seconds=60)  # the default: 2 x POLL_WORKERS_SECONDS (30 s)
FAIL = "transient: list worker groups: Azure sent a body that could not be decoded (JSON is invalid)"


@pytest.fixture
def account(settings) -> AutomationAccount:
    assert settings.ALERT_BLIND_GRACE_SECONDS == GRACE.total_seconds() == 2 * settings.POLL_WORKERS_SECONDS
    account, _, _ = make_fleet()
    ok_poll(account, T0)
    ok_poll(account, T0, kind="workers")
    return account


@pytest.fixture
def beat(time_machine) -> Callable[..., OutboxResult]:
    """One beat of the outbox and the sender at ``at``, with the clock frozen there."""

    def run(at: datetime, *, poll: bool = False) -> OutboxResult:
        time_machine.move_to(at, tick=False)
        return tick(at, poll=poll)

    return run


def blind_alerts() -> list[Alert]:
    return list(Alert.objects.filter(kind=AlertKind.BLIND))


def test_a_groups_poll_in_flight_is_not_a_failure(account, beat, mailbox):
    at = T0 + timedelta(seconds=30)
    # Exactly what workers.fleet.polling writes when a poll starts: not ok, not finished.
    PollRun.objects.create(account=account, kind="groups", scope="", started_at=at)
    beat(at)
    beat(at + timedelta(seconds=5))
    assert blind_reasons(account, now=at) == []
    assert blind_alerts() == [] and mailbox.count() == 0
    # The pages judge by the same evidence: Automation is fresh, not failing.
    automation = next(s for s in data_freshness(now=at).sources if s.key == "automation")
    assert (automation.stale, automation.error) == (False, "")


def test_worker_alerts_are_not_held_while_a_poll_is_in_flight(account, beat, mailbox):
    at = T0 + timedelta(seconds=30)
    PollRun.objects.create(account=account, kind="groups", scope="", started_at=at)
    worker = account.groups.get(name="hrw-win").workers.order_by("name").first()
    go(worker, "offline", at)
    beat(at)
    assert [s.split()[0] for s in mailbox.subjects()] == ["DOWN"]


def test_one_failed_groups_poll_then_a_good_one_within_the_grace_sends_nothing(account, beat, mailbox):
    failed_at = T0 + timedelta(seconds=30)
    ok_poll(account, failed_at, ok=False, error=FAIL)
    beat(failed_at)
    beat(failed_at + timedelta(seconds=5))
    ok_poll(account, failed_at + timedelta(seconds=10))  # the task's retry succeeds
    beat(failed_at + timedelta(seconds=10))
    for seconds in (30, 60, 90, 120):
        beat(failed_at + timedelta(seconds=seconds), poll=True)
    assert mailbox.count() == 0
    assert blind_alerts() == []  # no page, and no alert on the alerts page either


def test_a_blip_holds_worker_alerts_and_releases_them_when_it_clears(account, beat, mailbox):
    failed_at = T0 + timedelta(minutes=1)
    ok_poll(account, failed_at, ok=False, error=FAIL)
    worker = account.groups.get(name="hrw-win").workers.order_by("name").first()
    go(worker, "offline", failed_at)
    beat(failed_at)
    assert mailbox.count() == 0  # held: the data cannot be trusted while the poll fails
    ok_poll(account, failed_at + timedelta(seconds=10))
    beat(failed_at + timedelta(seconds=10))
    assert mailbox.count() == 0  # released, after a fresh group wait
    beat(failed_at + timedelta(seconds=10) + WAIT)
    assert [s.split()[0] for s in mailbox.subjects()] == ["DOWN"]
    assert blind_alerts() == []


def test_a_failure_that_outlasts_the_grace_pages_once_dated_from_its_start(account, beat, mailbox):
    start = T0 + timedelta(minutes=7, seconds=10)
    at = start
    while at < start + GRACE:
        ok_poll(account, at, ok=False, error=FAIL)  # every cycle's groups poll fails
        beat(at)
        beat(at + timedelta(seconds=5))
        at += timedelta(seconds=15)
    assert mailbox.count() == 0 and blind_alerts() == []
    beat(start + GRACE)
    assert mailbox.subjects() == [
        f"BLIND monitoring of aa-ops — Automation API failing since 12:07 UTC: {FAIL}; worker alerts held until restored"
    ]
    (alert,) = blind_alerts()
    assert (alert.opened_at, alert.notified_at) == (start, start + GRACE)
    for seconds in (15, 30, 300):
        ok_poll(account, start + GRACE + timedelta(seconds=seconds), ok=False, error=FAIL)
        beat(start + GRACE + timedelta(seconds=seconds))
    assert mailbox.count() == 1
    back = start + timedelta(minutes=10)
    ok_poll(account, back)
    beat(back)
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND", "RESTORED"]
    assert "Blind from 2026-11-20 12:07:10 to 2026-11-20 12:17:10 UTC" in text_part(mailbox.messages[1])


def test_a_failing_log_analytics_query_waits_the_grace_too(account, beat, mailbox):
    AutomationAccount.objects.filter(pk=account.pk).update(workspace_id="ws-1")
    account.refresh_from_db()
    start = T0 + timedelta(seconds=20)
    ok_poll(account, T0, kind="heartbeat")
    ok_poll(account, start, kind="heartbeat", ok=False, error="transient: HTTP 503")
    beat(start, poll=True)
    beat(start + GRACE - timedelta(seconds=1), poll=True)
    assert mailbox.count() == 0
    beat(start + GRACE, poll=True)
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND"]
    assert blind_alerts()[0].opened_at == start


def test_the_grace_is_configurable(account, beat, mailbox, settings):
    settings.ALERT_BLIND_GRACE_SECONDS = 180
    failed_at = T0 + timedelta(seconds=30)
    for seconds in range(0, 180, 30):
        ok_poll(account, failed_at + timedelta(seconds=seconds), ok=False, error=FAIL)
        beat(failed_at + timedelta(seconds=seconds))
    assert mailbox.count() == 0
    beat(failed_at + timedelta(seconds=180))
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND"]
