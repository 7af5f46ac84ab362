"""Maintenance windows: create/delete, and how windows hold and release alert emails (the pure timing
rule is tested in tests/rules/test_maintenance.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.alerting.factories import T0, WAIT, go, make_account, make_fleet, make_group, tick
from workers.alerting.maintenance import create_maintenance_window, delete_maintenance_window
from workers.alerting.sending import send_pending
from workers.models import Alert, AlertState


@pytest.mark.django_db
def test_it_refuses_a_window_without_a_target():
    with pytest.raises(ValueError):
        create_maintenance_window(reason="x", starts_at=T0, ends_at=T0 + timedelta(hours=1))


@pytest.mark.django_db
def test_it_deletes_a_window_once():
    account = make_account()
    group = make_group(account, "g", 1)
    window = create_maintenance_window(reason="patch", group=group, starts_at=T0, ends_at=T0 + timedelta(hours=1))
    assert delete_maintenance_window(window_id=window.pk)
    assert not delete_maintenance_window(window_id=window.pk)


# --- Held and released emails ---------------------------------------------------------------------


@pytest.fixture
def fleet(db):
    _, group, workers = make_fleet()
    return group, workers


def test_it_sends_nothing_for_a_worker_that_goes_down_and_back_inside_a_window(fleet, mailbox):
    group, (w1, _, _) = fleet
    create_maintenance_window(reason="patching", group=group, starts_at=T0, ends_at=T0 + timedelta(hours=1))
    go(w1, "offline", T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=6))
    go(w1, "online", T0 + timedelta(minutes=20))
    tick(T0 + timedelta(minutes=20))
    tick(T0 + timedelta(hours=2))
    assert mailbox.count() == 0
    assert Alert.objects.get().state == AlertState.RESOLVED


def test_it_still_tracks_the_outage_during_a_window(fleet, mailbox):
    group, (w1, _, _) = fleet
    create_maintenance_window(reason="patching", worker=w1, starts_at=T0, ends_at=T0 + timedelta(hours=1))
    go(w1, "offline", T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=6))
    alert = Alert.objects.get()
    assert (alert.state, alert.suppressed, alert.notified_at) == (AlertState.OPEN, "maintenance", None)


def test_it_sends_the_down_email_when_the_window_ends_and_the_worker_is_still_down(fleet, mailbox):
    group, (w1, _, _) = fleet
    create_maintenance_window(reason="patching", group=group, starts_at=T0, ends_at=T0 + timedelta(hours=1))
    go(w1, "offline", T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=59))
    assert mailbox.count() == 0
    tick(T0 + timedelta(hours=1))
    assert [s.split()[:2] for s in mailbox.subjects()] == [["DOWN", "hrw-win-01"]]
    go(w1, "online", T0 + timedelta(hours=1, minutes=10))
    tick(T0 + timedelta(hours=1, minutes=10))
    assert mailbox.subjects()[1].startswith("RECOVERED hrw-win-01")


def test_it_sends_the_recovery_of_an_outage_that_began_before_the_window(fleet, mailbox):
    group, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    create_maintenance_window(reason="repair", group=group, starts_at=T0 + timedelta(minutes=10), ends_at=T0 + timedelta(hours=2))
    go(w1, "online", T0 + timedelta(minutes=30))
    tick(T0 + timedelta(minutes=30))
    assert [s.split()[0] for s in mailbox.subjects()] == ["DOWN", "RECOVERED"]


def test_it_holds_reminders_while_the_down_worker_is_in_a_window(fleet, mailbox):
    from workers.alerting.reminders import send_reminders

    group, (w1, _, _) = fleet
    go(w1, "offline", T0)
    tick(T0)
    tick(T0 + WAIT)
    create_maintenance_window(reason="repair", worker=w1, starts_at=T0 + timedelta(hours=1), ends_at=T0 + timedelta(hours=6))
    send_reminders(now=T0 + timedelta(hours=4, minutes=1))
    send_pending(now=T0 + timedelta(hours=4, minutes=1))
    assert mailbox.count() == 1


def test_it_releases_held_alerts_when_a_window_is_deleted(fleet, mailbox):
    group, (w1, _, _) = fleet
    window = create_maintenance_window(reason="patching", group=group, starts_at=T0, ends_at=T0 + timedelta(hours=3))
    go(w1, "offline", T0 + timedelta(minutes=5))
    tick(T0 + timedelta(minutes=5))
    delete_maintenance_window(window_id=window.pk)
    tick(T0 + timedelta(minutes=7))
    assert [s.split()[0] for s in mailbox.subjects()] == ["DOWN"]
