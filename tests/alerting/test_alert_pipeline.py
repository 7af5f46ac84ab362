"""The outbox -> alert -> email pipeline, with rows written the way workers.fleet.status writes them and
a real SMTP conversation (aiosmtpd on loopback). Times are explicit (``now=``)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import override_settings

from tests.alerting.factories import T0, WAIT, go, make_account, make_fleet, make_group, ok_poll, tick
from tests.fixtures.smtp import html_part, text_part
from workers.alerting.reminders import acknowledge, send_reminders
from workers.alerting.sending import send_pending
from workers.models import Alert, AlertKind, AlertState, AutomationAccount, HybridWorker, Notification, StatusChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet():
    account, _, workers = make_fleet()
    ok_poll(account, T0)
    return account, workers


def flap(worker: HybridWorker, start: datetime, *, cycles: int, tick_after_wait: bool = False) -> datetime:
    """``cycles`` times: offline, tick, (optionally tick again a group wait later), online 2 min later,
    tick. Changes are 2 min apart; returns the time 2 min after the last "online"."""
    at = start
    for _cycle in range(cycles):
        go(worker, "offline", at)
        tick(at)
        if tick_after_wait:
            tick(at + WAIT)
        at += timedelta(minutes=2)
        go(worker, "online", at)
        tick(at)
        at += timedelta(minutes=2)
    return at


def test_it_sends_a_lone_failure_at_once(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    assert mailbox.count() == 1


def test_it_waits_for_a_group_member_that_went_silent_at_the_same_time(fleet, mailbox):
    _, (w1, w2, _) = fleet
    HybridWorker.objects.filter(pk=w2.pk).update(alert_after=T0 + timedelta(seconds=20))
    go(w1, "offline", T0)
    tick(T0)
    assert mailbox.count() == 0
    go(w2, "offline", T0 + timedelta(seconds=20), silent_since=T0 + timedelta(seconds=20) - timedelta(seconds=610))
    tick(T0 + timedelta(seconds=20))
    assert mailbox.subjects() == ["DOWN 2 workers (hrw-win-01, hrw-win-02) (group hrw-win: 1 of 3 online) — Machine or Hybrid Worker service down"]


def test_it_waits_no_longer_than_the_group_wait(fleet, mailbox, settings):
    settings.ALERT_GROUP_WAIT_SECONDS = 60
    _, (w1, w2, _) = fleet
    HybridWorker.objects.filter(pk=w2.pk).update(alert_after=T0 + timedelta(seconds=50))
    go(w1, "offline", T0, silent_since=T0 - timedelta(seconds=600))  # deadline T0
    tick(T0)
    tick(T0 + timedelta(seconds=59))
    assert mailbox.count() == 0
    tick(T0 + timedelta(seconds=60))
    assert mailbox.subjects() == ["DOWN hrw-win-01 (group hrw-win: 2 of 3 online) — Machine or Hybrid Worker service down"]


def test_it_sends_one_down_email_with_the_diagnosis(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    assert mailbox.subjects() == ["DOWN hrw-win-01 (group hrw-win: 2 of 3 online) — Machine or Hybrid Worker service down"]
    text = text_part(mailbox.messages[0])
    assert "Start-Service HybridWorkerService" in text
    assert "Automation lastSeenDateTime: STALE (offline), last 2026-11-20T11:49:50+00:00 (10.2 min ago)" in text
    assert "2 of 3 workers online" in text
    assert f"https://hrw.example.com/workers/{w1.pk}/" in text


def test_it_sends_html_and_text_parts(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    html = html_part(mailbox.messages[0])
    assert "<strong>Probable cause: Machine or Hybrid Worker service down.</strong>" in html


def test_it_sends_a_recovery_email_with_the_outage_duration(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    go(w1, "online", T0 + timedelta(minutes=12))
    tick(T0 + timedelta(minutes=12))
    # Dated from the last signal (go(): 610 s before the change), not from the detection.
    assert mailbox.subjects()[1] == "RECOVERED hrw-win-01 after 22.2 min (group hrw-win: 3 of 3 online)"
    assert "Outage: 2026-11-20 11:49:50 to 2026-11-20 12:12:00 UTC (22.2 min)." in text_part(mailbox.messages[1])


def test_it_treats_leaving_offline_for_late_as_recovery_when_automation_sees_the_worker(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    back = T0 + timedelta(minutes=5)
    HybridWorker.objects.filter(pk=w1.pk).update(last_seen_at=back)
    w1.refresh_from_db()
    go(w1, "late", back)
    tick(back)
    assert [s.split()[0] for s in mailbox.subjects()] == ["DOWN", "RECOVERED"]


def test_it_rolls_up_workers_of_a_group_that_go_down_together(fleet, mailbox):
    _, workers = fleet
    for i, worker in enumerate(workers):  # silent within 20 s of each other: deadlines 10 s apart
        HybridWorker.objects.filter(pk=worker.pk).update(alert_after=T0 + timedelta(seconds=10 * i))
    for i, worker in enumerate(workers):
        at = T0 + timedelta(seconds=10 * i)
        go(worker, "offline", at, silent_since=at - timedelta(seconds=610))
        tick(at)
    tick(T0 + WAIT)
    assert mailbox.count() == 1
    subject = mailbox.subjects()[0]
    assert subject.startswith("DOWN 3 workers (hrw-win-01, hrw-win-02, hrw-win-03) (group hrw-win: 0 of 3 online)")
    assert "The group has NO online worker: queued jobs will fail." in text_part(mailbox.messages[0])
    assert Alert.objects.get().kind == AlertKind.GROUP_ROLLUP


def test_it_sends_one_rollup_recovery_when_the_last_member_is_back(fleet, mailbox):
    _, workers = fleet
    for worker in workers:
        go(worker, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    go(workers[0], "online", T0 + timedelta(minutes=3))
    tick(T0 + timedelta(minutes=3))
    assert mailbox.count() == 1
    for worker in workers[1:]:
        go(worker, "online", T0 + timedelta(minutes=6))
    tick(T0 + timedelta(minutes=6))
    assert mailbox.subjects()[1] == "RECOVERED 3 workers after 16.2 min (group hrw-win: 3 of 3 online)"  # from the last signal


def test_it_keeps_a_worker_that_goes_down_after_the_wait_in_its_own_alert(fleet, mailbox):
    _, (w1, w2, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    later = T0 + timedelta(minutes=5)
    go(w2, "offline", later)
    tick(later)
    tick(later + WAIT)
    assert mailbox.count() == 2
    assert Alert.objects.filter(kind=AlertKind.WORKER_DOWN).count() == 2


def test_it_sends_nothing_when_the_worker_is_back_before_the_wait_ends(fleet, mailbox):
    _, (w1, w2, _) = fleet
    HybridWorker.objects.filter(pk=w2.pk).update(alert_after=T0 + timedelta(seconds=40))
    go(w1, "offline", T0)
    tick(T0)
    go(w1, "online", T0 + timedelta(seconds=10))
    HybridWorker.objects.filter(pk=w2.pk).update(alert_after=T0 + timedelta(seconds=600))
    tick(T0 + timedelta(seconds=10))
    tick(T0 + timedelta(minutes=2))
    assert mailbox.count() == 0
    assert Alert.objects.get().state == AlertState.RESOLVED


def test_it_processes_each_change_once_when_run_twice(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0)
    tick(T0 + WAIT)
    tick(T0 + WAIT)
    assert mailbox.count() == 1
    assert StatusChange.objects.filter(processed_at__isnull=True).count() == 0


def test_it_uses_the_groups_own_recipients(mailbox):
    account = make_account()
    group = make_group(account, "hrw-sql", 2, recipients="dba@example.com, sql-oncall@example.com")
    make_group(account, "hrw-other", 1)
    ok_poll(account, T0)
    go(group.workers.first(), "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    assert mailbox.messages[0]["To"] == "dba@example.com, sql-oncall@example.com"


def test_it_escapes_azure_names_in_the_html_part(mailbox):
    account = make_account()
    group = make_group(account, "<script>alert(1)</script>", 2)
    make_group(account, "hrw-other", 1)
    ok_poll(account, T0)
    go(group.workers.first(), "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    html = html_part(mailbox.messages[0])
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_opens_one_blind_alert_when_the_worker_poll_fails(fleet, mailbox):
    account, workers = fleet
    ok_poll(account, T0 + timedelta(seconds=30), ok=False, error="ServiceRequestError: connection refused")
    all_workers = HybridWorker.objects.all()
    for worker in all_workers:
        go(worker, "offline", T0 + timedelta(minutes=10))
    tick(T0 + timedelta(minutes=10), poll=False)
    tick(T0 + timedelta(minutes=11), poll=False)
    assert len(mailbox.subjects()) == 1
    assert mailbox.subjects()[0].startswith(
        "BLIND monitoring of aa-ops — Automation API failing since 12:00 UTC: ServiceRequestError: connection refused"
    )


def test_it_treats_every_worker_of_the_account_offline_at_once_as_blind(fleet, mailbox):
    for worker in HybridWorker.objects.all():
        go(worker, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND"]
    assert "every worker of the account (5 in 2 groups) went silent" in text_part(mailbox.messages[0])


def test_it_sends_monitoring_restored_and_no_storm_when_workers_come_back(fleet, mailbox):
    account, _ = fleet
    ok_poll(account, T0 + timedelta(seconds=30), ok=False, error="503")
    for worker in HybridWorker.objects.all():
        go(worker, "offline", T0 + timedelta(minutes=10))
    tick(T0 + timedelta(minutes=10), poll=False)
    back = T0 + timedelta(minutes=15)
    ok_poll(account, back)
    for worker in HybridWorker.objects.all():
        go(worker, "online", back)
    tick(back)
    tick(back + WAIT)
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND", "RESTORED"]


def test_it_alerts_after_restore_for_a_worker_that_stays_down(fleet, mailbox):
    account, (w1, _, _) = fleet
    ok_poll(account, T0 + timedelta(seconds=30), ok=False, error="503")
    for worker in HybridWorker.objects.all():
        go(worker, "offline", T0 + timedelta(minutes=10))
    tick(T0 + timedelta(minutes=10), poll=False)
    back = T0 + timedelta(minutes=15)
    ok_poll(account, back)
    for worker in HybridWorker.objects.exclude(pk=w1.pk):
        go(worker, "online", back)
    tick(back)
    tick(back + WAIT)
    assert [s.split()[0] for s in mailbox.subjects()] == ["BLIND", "RESTORED", "DOWN"]
    assert "hrw-win-01" in mailbox.subjects()[2]


@override_settings(FLAP_TRANSITIONS=4, FLAP_WINDOW_MINUTES=30, FLAP_STABLE_MINUTES=15)
def test_it_sends_one_flapping_alert_and_holds_the_rest(fleet, mailbox):
    _, (w1, _, _) = fleet
    flap(w1, T0, cycles=5, tick_after_wait=True)
    kinds = [s.split()[0] for s in mailbox.subjects()]
    assert kinds == ["DOWN", "RECOVERED", "DOWN", "FLAPPING"]
    assert Alert.objects.filter(kind=AlertKind.FLAPPING).count() == 1


@override_settings(FLAP_TRANSITIONS=4, FLAP_WINDOW_MINUTES=30, FLAP_STABLE_MINUTES=15)
def test_it_says_stable_once_the_worker_stops_flapping(fleet, mailbox):
    _, (w1, _, _) = fleet
    at = flap(w1, T0, cycles=3)
    last_change = at - timedelta(minutes=2)
    tick(last_change + timedelta(minutes=14))
    assert mailbox.subjects()[-1].startswith("FLAPPING")
    tick(last_change + timedelta(minutes=15))
    assert mailbox.subjects()[-1] == "STABLE hrw-win-01: no status change for 15 min, now online"


@override_settings(FLAP_TRANSITIONS=4, FLAP_WINDOW_MINUTES=30, FLAP_STABLE_MINUTES=15)
def test_it_opens_a_down_alert_when_a_flapping_worker_settles_down(fleet, mailbox):
    _, (w1, _, _) = fleet
    at = flap(w1, T0, cycles=2)
    go(w1, "offline", at)
    tick(at)
    tick(at + timedelta(minutes=16))
    assert [s.split()[0] for s in mailbox.subjects()][-2:] == ["STABLE", "DOWN"]


def test_it_sends_a_reminder_every_four_hours_while_down(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    send_reminders(now=T0 + timedelta(hours=3, minutes=59))
    send_pending(now=T0 + timedelta(hours=3, minutes=59))
    assert mailbox.count() == 1
    send_reminders(now=T0 + timedelta(hours=4))
    send_reminders(now=T0 + timedelta(hours=4))
    send_pending(now=T0 + timedelta(hours=4))
    assert mailbox.subjects()[1].startswith("STILL DOWN hrw-win-01 for 4.2 h (group hrw-win: 2 of 3 online)")  # from the last signal


def test_it_stops_reminders_once_acknowledged(fleet, mailbox, django_user_model):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    alert = Alert.objects.get()
    user = django_user_model.objects.create_user("ops", password="x" * 12)
    assert acknowledge(alert_id=alert.pk, user=user, now=T0 + timedelta(minutes=5))
    send_reminders(now=T0 + timedelta(hours=9))
    send_pending(now=T0 + timedelta(hours=9))
    assert mailbox.count() == 1
    alert.refresh_from_db()
    assert alert.acknowledged_by == user


def test_it_alerts_on_a_worker_automation_cannot_reach_while_heartbeats_continue(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = T0 + timedelta(minutes=5)
    HybridWorker.objects.filter(pk=w1.pk).update(
        status="late", last_seen_at=T0, last_heartbeat_at=now - timedelta(seconds=40)
    )
    tick(now)
    tick(now + WAIT)
    # On a V2 worker a fresh heartbeat with a silent Automation contact is first the Hybrid Worker
    # service (it looks the same from outside as a blocked port 443, which the email names next).
    assert mailbox.subjects() == ["DOWN hrw-win-01 (group hrw-win: 2 of 3 online, 1 late) — Hybrid Worker service stopped"]
    text = text_part(mailbox.messages[0])
    assert "Log Analytics Heartbeat: FRESH" in text
    assert "Start-Service HybridWorkerService" in text and "outbound" in text.lower()


def test_it_counts_notifications_once_per_key(fleet, mailbox):
    _, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    assert Notification.objects.filter(dedupe_key__endswith=":open").count() == 1


def test_it_waits_while_a_fresh_heartbeat_predates_the_lost_automation_contact(fleet, mailbox):
    # A stopped agent: its last heartbeat is still inside Log Analytics' ingestion latency, so it
    # proves nothing; the alert comes when every signal is past the grace period (status offline).
    _, (w1, _, _) = fleet
    now = T0 + timedelta(minutes=4)
    HybridWorker.objects.filter(pk=w1.pk).update(status="late", last_seen_at=T0, last_heartbeat_at=T0 + timedelta(seconds=5))
    tick(now)
    tick(now + WAIT)
    assert mailbox.count() == 0


def test_it_goes_blind_when_no_worker_poll_succeeded_recently(fleet, mailbox):
    tick(T0 + timedelta(minutes=2), poll=False)
    assert mailbox.subjects() == ["BLIND monitoring of aa-ops — no successful Automation worker poll for 2 min; worker alerts held until restored"]


def test_it_is_not_blind_when_one_groups_worker_poll_fails(fleet, mailbox):
    account, _ = fleet
    ok_poll(account, T0 + timedelta(seconds=30))
    ok_poll(account, T0 + timedelta(seconds=31), kind="workers", ok=False, error="404 group gone")
    tick(T0 + timedelta(seconds=40), poll=False)
    assert mailbox.count() == 0


def test_it_reports_failing_log_analytics_without_holding_worker_alerts(fleet, mailbox):
    account, (w1, _, _) = fleet
    AutomationAccount.objects.filter(pk=account.pk).update(workspace_id="ws-1")
    ok_poll(account, T0, kind="heartbeat", ok=False, error="HttpResponseError: 503")
    go(w1, "offline", T0)
    tick(T0)
    assert mailbox.subjects()[0].startswith("DOWN")  # not held: Log Analytics alone does not blind Automation
    tick(T0 + timedelta(seconds=60))  # the blind alert pages once its condition held ALERT_BLIND_GRACE_SECONDS
    assert sorted(s.split()[0] for s in mailbox.subjects()) == ["BLIND", "DOWN"]
    blind = next(s for s in mailbox.subjects() if s.startswith("BLIND"))
    assert "Log Analytics heartbeat query failing: HttpResponseError: 503" in blind


def test_it_names_cpu_pressure_as_another_possible_cause(fleet, mailbox):
    _, (w1, _, _) = fleet
    HybridWorker.objects.filter(pk=w1.pk).update(cpu_pct=97.0, mem_pct=60.0, utilization_at=T0 - timedelta(minutes=5))
    w1.refresh_from_db()
    go(w1, "offline", T0)
    tick(T0)
    text = text_part(mailbox.messages[0])
    assert "Probable cause: Machine or Hybrid Worker service down." in text
    assert "Also possible: CPU/memory pressure. CPU 97 % (latest sample)" in text
