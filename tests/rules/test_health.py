"""The pure health rules, judged at an explicit frozen ``now``."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.rules.health import Status, group_health, summarize_group, worker_status
from workers.rules.signals import SIGNALS, Thresholds

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = Thresholds(lastseen_late=90, lastseen_offline=180, heartbeat_late=300, heartbeat_offline=600)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def judge(seen: float | None, hb: float | None, registered: float | None = 86400, thresholds: Thresholds = T):
    return worker_status(
        now=NOW,
        last_seen_at=None if seen is None else ago(seen),
        last_heartbeat_at=None if hb is None else ago(hb),
        registered_at=None if registered is None else ago(registered),
        thresholds=thresholds,
    )


def test_it_is_online_when_both_signals_are_fresh():
    v = judge(20, 40)
    assert v.status == "online"
    assert v.stale_signals == [] and v.fresh_signals == ["automation", "heartbeat"]


def test_it_says_which_signal_is_fresh_and_its_age():
    v = judge(420, 40)
    assert v.reason == "Automation last seen 7 min ago; Log Analytics heartbeat fresh (40 s)"


def test_it_is_online_at_exactly_the_late_threshold():
    assert judge(90, 300).status == "online"


def test_it_is_late_one_second_past_the_lastseen_late_threshold():
    v = judge(91, 40)
    assert v.status == "late"
    assert v.stale_signals == ["automation"] and v.fresh_signals == ["heartbeat"]


def test_it_is_late_when_only_the_heartbeat_is_late():
    v = judge(20, 301)
    assert v.status == "late" and v.stale_signals == ["heartbeat"]


def test_it_stays_late_while_one_signal_is_fresh_even_if_the_other_is_offline():
    assert judge(3600, 40).status == "late"


def test_it_is_late_not_offline_when_only_one_signal_is_past_offline():
    assert judge(181, 400).status == "late"


def test_it_is_offline_when_every_signal_is_past_its_offline_threshold():
    v = judge(181, 601)
    assert v.status == "offline"
    assert v.stale_signals == ["automation", "heartbeat"] and v.fresh_signals == []


def test_it_is_not_offline_at_exactly_the_offline_threshold():
    assert judge(180, 600).status == "late"


def test_it_judges_a_worker_without_heartbeat_on_lastseen_alone():
    assert judge(20, None).status == "online"
    assert judge(181, None).status == "offline"


def test_it_does_not_call_a_missing_heartbeat_stale():
    v = judge(20, None)
    assert "heartbeat" not in v.stale_signals and "heartbeat" not in v.fresh_signals
    assert "judged on Automation alone" in v.reason


def test_it_judges_on_heartbeat_alone_when_lastseen_is_missing():
    assert judge(None, 40).status == "online"
    assert judge(None, 601).status == "offline"


def test_it_says_never_when_registered_but_never_reported():
    v = judge(None, None, registered=3600)
    assert v.status == "never" and v.alert_after is None
    assert "never reported" in v.reason


def test_it_says_unknown_without_registration_or_signals():
    assert judge(None, None, registered=None).status == "unknown"


def test_it_treats_a_future_timestamp_as_fresh():
    v = judge(-30, -30)
    assert v.status == "online"
    assert v.signal("automation").age_seconds == 0


def test_it_sets_alert_after_to_when_the_last_signal_goes_offline():
    v = judge(20, 40)
    assert v.alert_after == max(ago(20) + timedelta(seconds=180), ago(40) + timedelta(seconds=600))


def test_it_keeps_alert_after_in_the_past_for_an_offline_worker():
    assert judge(1000, 2000).alert_after < NOW


def test_a_group_grace_replaces_every_offline_threshold():
    graced = T.with_grace(120)
    assert judge(121, 121, thresholds=graced).status == "offline"
    assert judge(121, 121).status == "late"


def test_a_group_grace_caps_the_late_thresholds():
    graced = T.with_grace(60)
    assert graced.lastseen_late == 60 and graced.heartbeat_late == 60


def test_no_grace_leaves_thresholds_unchanged():
    assert T.with_grace(None) is T


@pytest.mark.parametrize("kwargs", [{"lastseen_late": 0}, {"lastseen_late": 200}, {"heartbeat_late": 700}])
def test_it_rejects_inconsistent_thresholds(kwargs):
    with pytest.raises(ValueError):
        Thresholds(**kwargs)


def test_it_rejects_a_non_positive_grace():
    with pytest.raises(ValueError):
        T.with_grace(0)


def test_thresholds_come_from_settings(settings):
    settings.LASTSEEN_LATE_SECONDS = 11
    settings.LASTSEEN_OFFLINE_SECONDS = 22
    settings.HEARTBEAT_LATE_SECONDS = 33
    settings.HEARTBEAT_OFFLINE_SECONDS = 44
    assert Thresholds.from_settings() == Thresholds(11, 22, 33, 44)


# --- groups


def test_an_empty_group_is_empty():
    assert group_health([]) == "empty"


def test_a_group_with_every_member_online_is_healthy():
    assert group_health(["online", "online"]) == "healthy"


def test_a_group_with_some_members_not_online_is_degraded():
    assert group_health(["online", "offline"]) == "degraded"


def test_a_group_with_no_member_online_is_down_even_if_some_are_late():
    # Issue 12: "0/7 DEGRADED" hid a group nobody was known to serve; see tests/rules/test_group_health.py.
    assert group_health(["late", "offline"]) == "down"


def test_a_group_with_nobody_online_or_late_is_down():
    assert group_health(["offline", "never", "unknown"]) == "down"


def test_it_counts_members_and_treats_unknown_strings_as_unknown():
    s = summarize_group(["online", "late", "offline", "bogus"])
    assert (s.online, s.total, s.late, s.offline, s.unknown) == (1, 4, 1, 1, 1)
    assert s.label == "1 of 4 workers online"


def test_the_stored_choices_take_the_rules_values():
    from workers.models import SignalSource, WorkerStatus

    assert list(WorkerStatus.values) == [s.value for s in Status]
    assert list(SignalSource.values) == list(SIGNALS)
