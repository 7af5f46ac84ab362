"""The pure health rules, judged at an explicit frozen ``now``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from workers.rules import health
from workers.rules.health import Thresholds, diagnose, group_health, summarize_group, worker_status

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
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


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (119, "119 s"), (120, "2 min"), (3599, "59 min"), (3600, "1 h"), (3900, "1 h 5 min"), (2 * 86400 + 3600, "2 d 1 h"), (3 * 86400, "3 d")],
)
def test_it_formats_ages(seconds, text):
    assert health.format_age(seconds) == text


# --- groups


def test_an_empty_group_is_empty():
    assert group_health([]) == "empty"


def test_a_group_with_every_member_online_is_healthy():
    assert group_health(["online", "online"]) == "healthy"


def test_a_group_with_some_members_not_online_is_degraded():
    assert group_health(["online", "offline"]) == "degraded"


def test_a_group_with_only_late_members_is_degraded_not_down():
    assert group_health(["late", "offline"]) == "degraded"


def test_a_group_with_nobody_online_or_late_is_down():
    assert group_health(["offline", "never", "unknown"]) == "down"


def test_it_counts_members_and_treats_unknown_strings_as_unknown():
    s = summarize_group(["online", "late", "offline", "bogus"])
    assert (s.online, s.total, s.late, s.offline, s.unknown) == (1, 4, 1, 1, 1)
    assert s.label == "1 of 4 workers online"


# --- flags


def test_it_flags_a_single_member_group():
    codes = [f.code for f in health.group_flags(group_type="User", member_count=1)]
    assert codes == ["single_member"]


def test_it_does_not_flag_a_group_of_two():
    assert health.group_flags(group_type="User", member_count=2) == []


def test_it_flags_a_system_group_case_insensitively():
    assert [f.code for f in health.group_flags(group_type="system", member_count=3)] == ["system_group"]


def test_it_flags_a_v1_worker_with_the_retirement_date():
    flags = health.worker_flags(worker_type="HybridV1", registered_at=ago(10), last_seen_at=ago(5), last_heartbeat_at=None)
    assert [f.code for f in flags] == ["v1_worker"]
    assert "31 August 2024" in flags[0].detail


def test_it_does_not_flag_a_v2_worker_that_reports():
    assert health.worker_flags(worker_type="HybridV2", registered_at=ago(10), last_seen_at=ago(5), last_heartbeat_at=None) == []


def test_it_flags_a_worker_that_registered_but_never_reported():
    flags = health.worker_flags(worker_type="HybridV2", registered_at=ago(10), last_seen_at=None, last_heartbeat_at=None)
    assert [f.code for f in flags] == ["never_reported"]


# --- diagnosis


def test_it_diagnoses_agent_stopped_when_every_signal_is_silent():
    d = diagnose(verdict=judge(900, 900), now=NOW)
    assert d.code == "agent_stopped" and "Start-Service healthservice" in d.fix


def test_it_gives_the_linux_agent_restart_for_a_linux_machine():
    d = diagnose(verdict=judge(900, 900), now=NOW, os_type="Linux")
    assert "service_control restart" in d.fix


def test_it_diagnoses_outbound_blocked_when_heartbeat_is_fresh_and_lastseen_stale():
    d = diagnose(verdict=judge(900, 30), now=NOW)
    assert d.code == "outbound_blocked" and "*.azure-automation.net" in d.detail


def test_it_diagnoses_tls_interception_with_the_event_count_first():
    d = diagnose(verdict=judge(900, 900), now=NOW, event_4502_count=7)
    assert d.code == "tls_interception" and "7 event 4502" in d.detail


def test_it_diagnoses_cpu_pressure_from_a_recent_sample():
    d = diagnose(verdict=judge(10, 10), now=NOW, cpu_pct=97.0, mem_pct=50.0, utilization_at=ago(60))
    assert d.code == "resource_pressure" and "CPU 97 %" in d.detail


def test_it_diagnoses_memory_pressure_at_the_threshold():
    d = diagnose(verdict=judge(10, 10), now=NOW, cpu_pct=10.0, mem_pct=90.0, utilization_at=ago(60))
    assert d.code == "resource_pressure" and "memory 90 %" in d.detail


def test_it_ignores_pressure_from_an_old_sample():
    assert diagnose(verdict=judge(10, 10), now=NOW, cpu_pct=99.0, utilization_at=ago(3600)) is None


def test_it_ignores_cpu_just_below_the_pressure_threshold():
    assert diagnose(verdict=judge(10, 10), now=NOW, cpu_pct=84.9, mem_pct=89.9, utilization_at=ago(60)) is None


def test_it_names_no_cause_for_a_healthy_worker():
    assert diagnose(verdict=judge(10, 10), now=NOW) is None


def test_it_diagnoses_a_worker_that_never_reported():
    assert diagnose(verdict=judge(None, None), now=NOW).code == "never_reported"


def test_it_lists_every_matching_cause_most_specific_first():
    found = health.diagnoses(verdict=judge(900, 900), now=NOW, event_4502_count=2)
    assert [d.code for d in found] == ["tls_interception", "agent_stopped"]
