"""HybridWorkerPing in the freshness banner and the blind alert, only once it has worked for the account.

An account whose ping poll never succeeded (the metric refused, or no series for us) is "ping: not
available": never stale, never blind. Once it has been read, a failing or overdue ping poll is stale
in the banner (which names the signal and its age) and pages as blind after the grace, over real SMTP
(aiosmtpd); a ping poll in flight is not a failure. Frozen clock, beat by beat.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from tests.alerting.factories import T0, make_fleet, ok_poll, tick
from tests.fixtures.smtp import text_part
from workers.alerting.blind import blind_reasons
from workers.alerting.incidents import OutboxResult
from workers.fleet.selectors import data_freshness
from workers.models import Alert, AlertKind, AutomationAccount, PollRun

pytestmark = pytest.mark.django_db

GRACE = timedelta(seconds=60)  # ALERT_BLIND_GRACE_SECONDS by default
REFUSED = "(403) AuthorizationFailed: ... 'Microsoft.Insights/metrics/read' over scope ..."


@pytest.fixture
def account(settings) -> AutomationAccount:
    assert settings.ALERT_BLIND_GRACE_SECONDS == GRACE.total_seconds()
    assert settings.STALE_AFTER_INTERVALS * settings.POLL_PING_SECONDS == 180
    account, _, _ = make_fleet()
    return account


@pytest.fixture
def beat(time_machine, account) -> Callable[..., OutboxResult]:
    """One beat at ``at``: healthy groups/workers/jobs polls, the ping poll as given, the outbox and the sender."""

    def run(at: datetime, *, ping: bool | None) -> OutboxResult:
        time_machine.move_to(at, tick=False)
        for kind in ("workers", "jobs"):
            ok_poll(account, at, kind=kind)
        if ping is not None:
            ok_poll(account, at, kind="ping", ok=ping, error="" if ping else REFUSED)
        return tick(at)

    return run


def ping_source(at: datetime):
    return next((s for s in data_freshness(now=at).sources if s.key == "ping"), None)


def test_an_account_whose_ping_never_worked_is_not_available_never_stale_nor_blind(account, beat, mailbox, client_in):
    for minute in range(0, 12):
        beat(T0 + timedelta(minutes=minute), ping=False)
    at = T0 + timedelta(minutes=11)
    fresh = data_freshness(now=at)
    assert fresh.stale is False and ping_source(at) is None and fresh.unavailable == ("HybridWorkerPing",)
    assert blind_reasons(account, now=at) == []
    assert not Alert.objects.filter(kind=AlertKind.BLIND).exists() and mailbox.count() == 0
    body = client_in.get("/").content.decode()
    assert "HybridWorkerPing: not available" in body and "STALE DATA" not in body


def test_a_ping_that_worked_then_fails_past_the_grace_is_stale_and_pages_blind_once(account, beat, mailbox, client_in):
    beat(T0, ping=True)
    assert ping_source(T0).stale is False and data_freshness(now=T0).unavailable == ()
    first_failure = T0 + timedelta(minutes=1)
    beat(first_failure, ping=False)
    # Stale in the banner at once (its latest poll failed), but one failure is no page.
    source = ping_source(first_failure)
    assert source.stale and source.error == REFUSED and source.label == "HybridWorkerPing"
    assert mailbox.count() == 0
    beat(first_failure + GRACE - timedelta(seconds=1), ping=None)
    assert mailbox.count() == 0
    beat(first_failure + GRACE, ping=False)
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND"]
    assert "HybridWorkerPing metric failing since" in mailbox.subjects()[0]
    # A ping outage alone holds no worker alert (Automation is still read), and the email says so.
    assert mailbox.subjects()[0].endswith("; worker alerts still sent"), mailbox.subjects()[0]
    assert "worker alerts still go out" in text_part(mailbox.messages[0])
    assert "AuthorizationFailed" in text_part(mailbox.messages[0])
    body = client_in.get("/").content.decode()
    banner = body[body.index("STALE DATA"):body.index("</ul>", body.index("STALE DATA"))]
    assert "<li>HybridWorkerPing: " in banner and "last good poll " in banner and "AuthorizationFailed" in banner
    # Back: RESTORED, once.
    back = first_failure + GRACE + timedelta(minutes=1)
    beat(back, ping=True)
    beat(back + timedelta(minutes=1), ping=True)
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND", "RESTORED"]
    assert not mailbox.subjects()[1].endswith("worker alerts resume"), mailbox.subjects()[1]
    assert ping_source(back).stale is False


def test_an_overdue_ping_is_stale_with_its_age_and_pages_blind(account, beat, mailbox):
    beat(T0, ping=True)
    # The ping poll stops (its beat entry dies): no failure, just no new read.
    beat(T0 + timedelta(minutes=3), ping=None)
    assert mailbox.count() == 0 and ping_source(T0 + timedelta(minutes=3)).stale is False
    at = T0 + timedelta(minutes=3, seconds=30)
    beat(at, ping=None)
    source = ping_source(at)
    assert source.stale and source.error == "" and source.age_seconds == 210
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND"]
    assert "no successful HybridWorkerPing read for 3.5 min" in mailbox.subjects()[0]


def test_a_ping_poll_in_flight_is_not_a_failure(account, beat, mailbox):
    beat(T0, ping=True)
    at = T0 + timedelta(minutes=1)
    # What workers.fleet.polling writes when a poll starts: not ok, not finished.
    PollRun.objects.create(account=account, kind="ping", scope="", started_at=at)
    beat(at, ping=None)
    beat(at + timedelta(seconds=90), ping=None)
    source = ping_source(at + timedelta(seconds=90))
    assert (source.stale, source.error) == (False, "")
    assert blind_reasons(account, now=at + timedelta(seconds=90)) == []
    assert mailbox.count() == 0
