"""The pure rule behind issue 12's "a worker is judged only on data we actually fetched".

Each signal is judged as of our last look at it (the start of our latest successful poll), not at
``now``: when our own polling is behind, the stored timestamps are as old as our last poll, and
judging them at ``now`` turned healthy workers late or offline (our gap, not the fleet's).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.rules.health import worker_status
from workers.rules.signals import Thresholds, judge_signal

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = Thresholds(lastseen_late=90, lastseen_offline=180, heartbeat_late=300, heartbeat_offline=600)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def judge(seen: float | None, hb: float | None, *, looked: float | None, hb_looked: float | None = None):
    """Judge at NOW with the worker poll ``looked`` s ago and the heartbeat poll ``hb_looked`` s ago."""
    return worker_status(
        now=NOW,
        last_seen_at=None if seen is None else ago(seen),
        last_heartbeat_at=None if hb is None else ago(hb),
        registered_at=ago(86400),
        thresholds=T,
        automation_checked_at=None if looked is None else ago(looked),
        heartbeat_checked_at=None if hb_looked is None else ago(hb_looked),
    )


def test_a_signal_is_judged_as_of_our_last_poll_not_now():
    # Our worker poll 4 min ago saw lastSeen 10 s old; 250 s old by now, but nobody has looked since.
    v = judge(250, 320, looked=240, hb_looked=240)
    assert v.status == "online"
    assert v.unchecked_signals == ["automation", "heartbeat"] and v.stale_signals == []


def test_the_reason_records_the_gap_as_ours():
    v = judge(250, 320, looked=240, hb_looked=240)
    assert "not re-checked: our last worker poll of this group was 4 min ago" in v.reason
    assert "not re-checked: our last heartbeat poll of this account was 4 min ago" in v.reason
    assert v.reason.startswith("Automation last seen 4.2 min ago (fresh when last checked;")
    assert len(v.reason) <= 300


def test_a_signal_already_late_when_we_looked_stays_late_but_not_offline():
    v = judge(300, 20, looked=180)  # lastSeen 120 s old at our poll: late then, offline by now
    assert v.status == "late" and v.signal("automation").state == "late"
    assert "Automation last seen 5 min ago (not re-checked: our last worker poll of this group was 3 min ago)" in v.reason


def test_a_fresh_poll_that_still_shows_an_old_signal_judges_it_at_once():
    v = judge(250, 20, looked=1)
    assert v.status == "late" and v.stale_signals == ["automation"] and v.unchecked_signals == []
    assert "not re-checked" not in v.reason


def test_a_worker_never_polled_is_judged_at_now_as_before():
    v = judge(250, 320, looked=None, hb_looked=None)
    assert v.status == "late" and v.unchecked_signals == []
    assert v.reason == "Automation last seen 4.2 min ago; Log Analytics heartbeat 5.3 min old"


def test_no_note_when_the_gap_hides_nothing():
    v = judge(20, 30, looked=600, hb_looked=600)  # our polls are old, but the signals are fresh even now
    assert v.status == "online" and v.unchecked_signals == []
    assert v.reason == "Automation last seen 20 s ago (fresh); Log Analytics heartbeat fresh (30 s)"


def test_a_look_in_the_future_counts_as_now():
    assert judge(250, 20, looked=-60).status == "late"


def test_a_signal_newer_than_our_last_look_counts_as_seen_then():
    # A poll still in flight already stored a newer lastSeen: it is fresh, whatever our last look.
    signal = judge_signal("automation", ago(5), now=NOW, late=90, offline=180, checked_at=ago(400))
    assert signal.state == "fresh" and signal.unchecked_seconds is None and signal.age_seconds == 5


def test_the_deadline_is_a_fact_about_the_signals_not_about_when_we_looked():
    with_gap = judge(250, 320, looked=240, hb_looked=240)
    at_now = judge(250, 320, looked=None)
    assert with_gap.alert_after == at_now.alert_after == ago(320) + timedelta(seconds=600)


def test_an_offline_verdict_needs_every_signal_offline_as_of_our_looks():
    assert judge(1000, 2000, looked=1, hb_looked=1).status == "offline"
    v = judge(1000, 2000, looked=1, hb_looked=1500)  # the heartbeat poll is behind: only 500 s old then
    assert v.status == "late" and v.unchecked_signals == ["heartbeat"]
    assert v.alert_after is not None and v.alert_after < NOW
