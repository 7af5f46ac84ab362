"""Pressure alerts: the sustained CPU/memory rule, its hysteresis, maintenance and once-only sending,
with one-minute samples written the way workers.fleet.telemetry writes them and a real SMTP conversation
(aiosmtpd on loopback). Times are explicit (``now=``)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from tests.alerting.factories import T0, go, make_fleet, ok_poll, tick
from tests.fixtures.concurrency import run_in_threads
from tests.fixtures.smtp import html_part, text_part
from workers.alerting.maintenance import create_maintenance_window
from workers.alerting.outbox import process_outbox
from workers.alerting.sending import send_pending
from workers.models import Alert, AlertKind, AlertState, HybridWorker, Job, UtilizationSample
from workers.rules.pressure import pressure_alert_open

pytestmark = pytest.mark.django_db
HIGH = (97.0, 60.0)  # CPU over 85 %
LOW = (40.0, 60.0)
MEM_HIGH = (40.0, 94.0)  # memory over 90 %


@pytest.fixture
def fleet():
    account, _, workers = make_fleet()
    ok_poll(account, T0)
    return account, workers


def readings(worker: HybridWorker, start: datetime, values: list[tuple[float, float]]) -> datetime:
    """One sample per minute from ``start + 1 min`` and the latest reading on the worker row (as
    ingest_utilization stores them); returns the time of the last sample."""
    at = start
    for cpu, mem in values:
        at += timedelta(minutes=1)
        UtilizationSample.objects.update_or_create(worker=worker, ts=at, defaults={"cpu_pct": cpu, "mem_pct": mem})
    HybridWorker.objects.filter(pk=worker.pk).update(cpu_pct=values[-1][0], mem_pct=values[-1][1], utilization_at=at)
    return at


def pattern(high: int, low: int, value: tuple[float, float] = HIGH) -> list[tuple[float, float]]:
    """``low`` quiet minutes then ``high`` busy ones (the latest reading is busy)."""
    return [LOW] * low + [value] * high


def subjects(box) -> list[str]:
    return box.subjects()


# --- The pure rule -----------------------------------------------------------------------------------


RULE = {"share": 0.8, "clear_share": 0.4, "min_samples": 10}


@pytest.mark.parametrize(
    ("samples", "high", "is_open", "expected"),
    [
        (15, 12, False, True),  # exactly the share
        (15, 11, False, False),  # just below
        (9, 9, False, False),  # too few samples, all high
        (9, 0, True, True),  # too few samples: an open alert stays open (a data gap is no recovery)
        (15, 6, True, True),  # 0.40: at the clear share, still open
        (15, 5, True, False),  # 0.33: below it, resolved
    ],
)
def test_it_applies_the_share_the_minimum_samples_and_the_hysteresis(samples, high, is_open, expected):
    assert pressure_alert_open(samples=samples, high=high, is_open=is_open, **RULE) is expected


# --- Opening -----------------------------------------------------------------------------------------


def test_it_sends_one_pressure_email_when_the_share_reaches_the_threshold(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = readings(w1, T0, pattern(high=12, low=3))
    tick(now)
    assert len(subjects(mailbox)) == 1
    subject = subjects(mailbox)[0]
    assert subject.startswith(f"PRESSURE {w1.name} (group hrw-win) — CPU 97 % for 15 min")
    assert Alert.objects.get().kind == AlertKind.PRESSURE


def test_it_opens_nothing_just_below_the_share(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = readings(w1, T0, pattern(high=11, low=4))
    tick(now)
    assert not Alert.objects.exists()
    assert mailbox.count() == 0


def test_it_opens_nothing_with_too_few_samples(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = readings(w1, T0, pattern(high=9, low=0))
    tick(now)
    assert not Alert.objects.exists()


def test_it_counts_memory_pressure_too(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = readings(w1, T0, pattern(high=15, low=0, value=MEM_HIGH))
    tick(now)
    assert "memory 94 %" in subjects(mailbox)[0]


def test_it_ignores_samples_older_than_the_window(fleet, mailbox):
    _, (w1, _, _) = fleet
    readings(w1, T0, pattern(high=15, low=0))
    tick(T0 + timedelta(minutes=40))  # the busy minutes are 25-40 min old; the latest reading is stale
    assert not Alert.objects.exists()


def test_it_opens_no_pressure_alert_for_a_worker_that_is_down(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = readings(w1, T0, pattern(high=15, low=0))
    go(w1, "offline", now)
    tick(now)
    assert not Alert.objects.filter(kind=AlertKind.PRESSURE).exists()


def test_it_puts_the_diagnosis_and_the_measurements_in_both_parts(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = readings(w1, T0, pattern(high=12, low=3))
    for minutes, queue in ((30, 200.0), (600, 10.0), (900, 20.0)):
        Job.objects.create(
            account=w1.group.account, job_id=f"j{minutes}", runbook="rb", status="Completed", group=w1.group,
            created_at=now - timedelta(minutes=minutes), queue_seconds=queue,
        )
    tick(now)
    text, html = text_part(mailbox.messages[0]), html_part(mailbox.messages[0])
    assert "Probable cause: CPU/memory pressure" in text
    assert "below the minimum hardware" in text
    assert "Add CPU/memory to the machine" in text
    assert "CPU: p50 97 %, max 97 % (12 samples >= 85 %)" in text
    assert "last hour 3.3 min (1 jobs); the 24 h before 20 s (2 jobs). Jobs wait longer than usual." in text
    assert "last hour 3.3 min (1 jobs)" in html
    assert "3 of 3 online, 1 under CPU/memory pressure" in text
    assert "jobs are being delayed" in subjects(mailbox)[0]
    assert "Probable cause: CPU/memory pressure" in html


def test_it_escapes_azure_names_in_the_html_part(fleet, mailbox):
    _, (w1, _, _) = fleet
    HybridWorker.objects.filter(pk=w1.pk).update(name="<b>evil</b>")
    now = readings(w1, T0, pattern(high=15, low=0))
    tick(now)
    html = html_part(mailbox.messages[0])
    assert "<b>evil</b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in html


# --- Resolution and hysteresis ----------------------------------------------------------------------------


def test_it_keeps_the_alert_open_while_the_share_stays_above_the_clear_share(fleet, mailbox):
    _, (w1, _, _) = fleet
    opened = readings(w1, T0, pattern(high=15, low=0))
    tick(opened)
    now = readings(w1, opened, [LOW] * 9)  # window: 6 busy of 15 = 0.40, the clear share
    tick(now)
    assert Alert.objects.get().state == AlertState.OPEN
    assert len(subjects(mailbox)) == 1


def test_it_resolves_below_the_clear_share_with_a_recovery_email_and_the_duration(fleet, mailbox):
    _, (w1, _, _) = fleet
    opened = readings(w1, T0, pattern(high=15, low=0))
    tick(opened)
    now = readings(w1, opened, [LOW] * 10)  # window: 5 busy of 15 = 0.33
    tick(now)
    assert Alert.objects.get().state == AlertState.RESOLVED
    assert [s.split()[0] for s in subjects(mailbox)] == ["PRESSURE", "RECOVERED"]
    assert subjects(mailbox)[1] == f"RECOVERED {w1.name} from CPU/memory pressure after 10 min (group hrw-win)"
    assert re.search(r"Pressure: .* UTC \(10 min\)", text_part(mailbox.messages[1]))


def test_it_opens_a_new_alert_when_pressure_comes_back_after_recovery(fleet, mailbox):
    _, (w1, _, _) = fleet
    tick(readings(w1, T0, pattern(high=15, low=0)))
    resolved = readings(w1, T0 + timedelta(minutes=15), [LOW] * 15)
    tick(resolved)
    tick(readings(w1, resolved, pattern(high=15, low=0)))
    assert [s.split()[0] for s in subjects(mailbox)] == ["PRESSURE", "RECOVERED", "PRESSURE"]


# --- Maintenance and once-only ------------------------------------------------------------------------


def test_it_holds_pressure_under_maintenance_and_sends_it_when_the_window_ends(fleet, mailbox):
    _, (w1, _, _) = fleet
    create_maintenance_window(reason="patching", worker=w1, starts_at=T0, ends_at=T0 + timedelta(minutes=20))
    now = readings(w1, T0, pattern(high=15, low=0))
    tick(now)
    assert Alert.objects.get().suppressed == "maintenance"
    assert mailbox.count() == 0
    later = readings(w1, now, pattern(high=6, low=0))  # still under pressure after the window
    tick(later)
    assert [s.split()[0] for s in subjects(mailbox)] == ["PRESSURE"]


def test_it_sends_nothing_for_pressure_that_ends_inside_a_maintenance_window(fleet, mailbox):
    _, (w1, _, _) = fleet
    create_maintenance_window(reason="patching", worker=w1, starts_at=T0, ends_at=T0 + timedelta(hours=2))
    opened = readings(w1, T0, pattern(high=15, low=0))
    tick(opened)
    tick(readings(w1, opened, [LOW] * 15))
    assert Alert.objects.get().state == AlertState.RESOLVED
    assert mailbox.count() == 0


def test_it_sends_one_email_when_the_processing_runs_twice(fleet, mailbox):
    _, (w1, _, _) = fleet
    now = readings(w1, T0, pattern(high=15, low=0))
    tick(now)
    tick(now)
    tick(now + timedelta(seconds=5), poll=False)
    assert mailbox.count() == 1
    assert Alert.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_sends_one_email_when_two_beat_ticks_overlap(mailbox):
    account, _, (w1, _, _) = make_fleet()
    now = readings(w1, T0, pattern(high=15, low=0))
    ok_poll(account, now)

    def beat() -> None:
        process_outbox(now=now)
        send_pending(now=now)

    run_in_threads(beat)
    run_in_threads(beat)
    assert mailbox.count() == 1
    assert Alert.objects.filter(kind=AlertKind.PRESSURE).count() == 1
