"""Outage facts in the emails: an outage is dated from the worker's last signal, not from its
detection, and most of a group going dark together is one "possible site or network outage" email
that lists each member once and gives the advice once. Rows are written the way
workers.fleet.status writes them; the emails go through a real SMTP conversation (aiosmtpd)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.alerting.factories import T0, WAIT, go, make_account, make_fleet, make_group, ok_poll, tick
from tests.fixtures.smtp import html_part, text_part
from workers.alerting.reminders import send_reminders
from workers.alerting.sending import send_pending
from workers.models import Alert, AlertKind, AlertMember, HybridWorker, WorkerGroup

pytestmark = pytest.mark.django_db

SILENT = T0  # the worker's last signal (lastSeen and heartbeat)
DETECTED = T0 + timedelta(minutes=10)  # the status refresh notices it is offline
BACK = T0 + timedelta(minutes=15)


@pytest.fixture
def fleet():
    account, _, workers = make_fleet()
    ok_poll(account, T0)
    return account, workers


def test_it_dates_the_down_email_from_the_last_signal(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", DETECTED, silent_since=SILENT)
    tick(DETECTED)
    assert mailbox.count() == 1
    assert "* hrw-win-01 — offline since 2026-11-20 12:00:00 UTC (10 min)" in text_part(mailbox.messages[0])
    assert AlertMember.objects.get().down_at == SILENT


def test_it_reports_a_15_minute_outage_as_15_minutes_in_the_recovery_email(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", DETECTED, silent_since=SILENT)
    tick(DETECTED)
    go(w1, "online", BACK)
    tick(BACK)
    assert mailbox.subjects()[1] == "RECOVERED hrw-win-01 after 15 min (group hrw-win: 3 of 3 online)"
    text = text_part(mailbox.messages[1])
    assert "Outage: 2026-11-20 12:00:00 to 2026-11-20 12:15:00 UTC (15 min)." in text
    assert "* hrw-win-01: down 2026-11-20 12:00:00, back 2026-11-20 12:15:00 UTC (15 min)" in text


def test_it_counts_the_reminder_from_the_last_signal(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", DETECTED, silent_since=SILENT)
    tick(DETECTED)
    send_reminders(now=T0 + timedelta(hours=4, minutes=10))
    send_pending(now=T0 + timedelta(hours=4, minutes=10))
    assert mailbox.subjects()[1].startswith("STILL DOWN hrw-win-01 for 4.2 h ")


def test_it_dates_an_unreachable_worker_from_its_last_automation_contact(fleet, mailbox):
    # Heartbeats go on (outbound 443 blocked): the lost signal is Automation's lastSeen.
    _, (w1, _, _) = fleet
    now = T0 + timedelta(minutes=5)
    HybridWorker.objects.filter(pk=w1.pk).update(status="late", last_seen_at=T0, last_heartbeat_at=now - timedelta(seconds=40))
    tick(now)
    tick(now + WAIT)
    assert mailbox.count() == 1
    assert AlertMember.objects.get().down_at == T0
    assert "since 2026-11-20 12:00:00 UTC (5 min)" in text_part(mailbox.messages[0])


def test_it_moves_a_rollup_back_to_its_earliest_members_last_signal(fleet, mailbox):
    _, (w1, w2, _) = fleet
    HybridWorker.objects.filter(pk=w2.pk).update(alert_after=DETECTED + timedelta(seconds=20))
    go(w1, "offline", DETECTED, silent_since=SILENT + timedelta(seconds=30))
    tick(DETECTED)
    go(w2, "offline", DETECTED + timedelta(seconds=20), silent_since=SILENT)
    tick(DETECTED + timedelta(seconds=20))
    alert = Alert.objects.get()
    assert (alert.kind, alert.opened_at) == (AlertKind.GROUP_ROLLUP, SILENT)


# --- Most of a group dark together: one "possible site or network outage" email ------------------


def dark_together(group: WorkerGroup, count: int) -> list[HybridWorker]:
    """``count`` members of ``group`` go silent 5 s apart (their deadlines inside one group wait),
    each noticed by the status refresh as it crosses; returns them in name order."""
    members = list(group.workers.order_by("name"))[:count]
    for i, worker in enumerate(members):
        HybridWorker.objects.filter(pk=worker.pk).update(alert_after=T0 + timedelta(seconds=5 * i))
    for i, worker in enumerate(members):
        at = T0 + timedelta(seconds=5 * i)
        go(worker, "offline", at, silent_since=at - timedelta(seconds=610))
        tick(at)
    tick(T0 + WAIT)
    return members


@pytest.fixture
def site():
    account = make_account()
    group = make_group(account, "hrw-site", 7)
    make_group(account, "hrw-other", 2)
    ok_poll(account, T0)
    return group


def test_it_sends_one_site_outage_email_when_six_of_seven_go_dark(site, mailbox):
    members = dark_together(site, 6)
    assert mailbox.count() == 1
    subject = mailbox.subjects()[0]
    assert subject.startswith("DOWN 6 workers (hrw-site-01, hrw-site-02, hrw-site-03, hrw-site-04, …) (group hrw-site: 1 of 7 online)")
    assert "possible site or network outage" in subject
    text, html = text_part(mailbox.messages[0]), html_part(mailbox.messages[0])
    assert "POSSIBLE SITE OR NETWORK OUTAGE: 6 of 7 workers of group hrw-site went dark together" in text
    assert "Possible site or network outage:" in html
    for worker in members:
        assert text.count(worker.name) == 1, worker.name
        assert html.count(f">{worker.name}<") == 1, worker.name
    assert "hrw-site-07" not in text
    assert text.count("Start-Service HybridWorkerService") == 1
    assert html.count("Start-Service HybridWorkerService") == 1
    assert "Probable cause (all 6 workers): Machine or Hybrid Worker service down." in text


def test_it_lists_each_members_last_signal_in_the_site_outage_email(site, mailbox):
    dark_together(site, 6)
    text = text_part(mailbox.messages[0])
    assert "* hrw-site-01 — offline, last seen 2026-11-20 11:49:50 UTC (down 10.6 min)" in text
    assert "(last signals 2026-11-20 11:49:50 to 11:50:15 UTC)" in text


def test_it_sends_one_recovery_dated_from_the_first_last_signal(site, mailbox):
    members = dark_together(site, 6)
    back = T0 + timedelta(minutes=5)
    for worker in members:
        go(worker, "online", back)
    tick(back)
    assert mailbox.subjects()[1] == "RECOVERED 6 workers after 15.2 min (group hrw-site: 7 of 7 online)"


def test_it_does_not_call_two_of_seven_a_site_outage_but_gives_the_advice_once(site, mailbox):
    dark_together(site, 2)
    assert mailbox.count() == 1
    text = text_part(mailbox.messages[0])
    assert "possible site or network outage" not in mailbox.subjects()[0]
    assert "SITE OR NETWORK OUTAGE" not in text
    assert text.count("Start-Service HybridWorkerService") == 1


def test_it_follows_the_configured_share(site, mailbox, settings):
    settings.ALERT_SITE_OUTAGE_SHARE = 0.25
    dark_together(site, 2)
    assert "possible site or network outage" in mailbox.subjects()[0]
