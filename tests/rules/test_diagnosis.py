"""Flags and probable causes (diagnoses), judged at an explicit frozen ``now``."""
from __future__ import annotations

from types import SimpleNamespace

from tests.rules.test_health import NOW, T, ago, judge
from workers.rules.diagnosis import diagnose, diagnoses, group_flags, worker_diagnoses, worker_flags
from workers.rules.pressure import PressureLimits

# The shipped defaults of CAPACITY_CPU_PRESSURE_PCT / CAPACITY_MEM_PRESSURE_PCT.
LIMITS = PressureLimits(cpu_pct=85, mem_pct=90)


# --- flags


def test_it_flags_a_single_member_group():
    codes = [f.code for f in group_flags(group_type="User", member_count=1)]
    assert codes == ["single_member"]


def test_it_does_not_flag_a_group_of_two():
    assert group_flags(group_type="User", member_count=2) == []


def test_it_flags_a_system_group_case_insensitively():
    assert [f.code for f in group_flags(group_type="system", member_count=3)] == ["system_group"]


def test_it_flags_a_v1_worker_with_the_retirement_date():
    flags = worker_flags(worker_type="HybridV1", registered_at=ago(10), last_seen_at=ago(5), last_heartbeat_at=None)
    assert [f.code for f in flags] == ["v1_worker"]
    assert "31 August 2024" in flags[0].detail


def test_it_does_not_flag_a_v2_worker_that_reports():
    assert worker_flags(worker_type="HybridV2", registered_at=ago(10), last_seen_at=ago(5), last_heartbeat_at=None) == []


def test_it_flags_a_worker_that_registered_but_never_reported():
    flags = worker_flags(worker_type="HybridV2", registered_at=ago(10), last_seen_at=None, last_heartbeat_at=None)
    assert [f.code for f in flags] == ["never_reported"]


# --- diagnosis


def test_it_diagnoses_agent_stopped_when_every_signal_is_silent():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, worker_type="HybridV1", os_type="Windows")
    assert d.code == "agent_stopped" and "Start-Service healthservice" in d.fix and "migrate" in d.fix


def test_it_gives_the_linux_agent_restart_for_a_linux_machine():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, os_type="Linux", worker_type="HybridV1")
    assert "service_control restart" in d.fix


def test_it_diagnoses_outbound_blocked_when_heartbeat_is_fresh_and_lastseen_stale():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 30), now=NOW, worker_type="HybridV1")
    assert d.code == "outbound_blocked" and "*.azure-automation.net" in d.detail


def test_it_diagnoses_tls_interception_with_the_event_count_first():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, event_4502_count=7, worker_type="HybridV1")
    assert d.code == "tls_interception" and "7 event 4502" in d.detail


def test_it_diagnoses_cpu_pressure_from_a_recent_sample():
    d = diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW, cpu_pct=97.0, mem_pct=50.0, utilization_at=ago(60))
    assert d.code == "resource_pressure" and "CPU 97 %" in d.detail


def test_it_diagnoses_memory_pressure_at_the_threshold():
    d = diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW, cpu_pct=10.0, mem_pct=90.0, utilization_at=ago(60))
    assert d.code == "resource_pressure" and "memory 90 %" in d.detail


def test_it_ignores_pressure_from_an_old_sample():
    assert diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW, cpu_pct=99.0, utilization_at=ago(3600)) is None


def test_it_ignores_cpu_just_below_the_pressure_threshold():
    assert diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW, cpu_pct=84.9, mem_pct=89.9, utilization_at=ago(60)) is None


def test_it_names_no_cause_for_a_healthy_worker():
    assert diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW) is None


def test_it_diagnoses_a_worker_that_never_reported():
    assert diagnose(pressure=LIMITS, verdict=judge(None, None), now=NOW).code == "never_reported"


def test_it_lists_every_matching_cause_most_specific_first():
    found = diagnoses(verdict=judge(900, 900), now=NOW, pressure=LIMITS, event_4502_count=2, worker_type="HybridV1")
    assert [d.code for d in found] == ["tls_interception", "agent_stopped"]


def test_it_judges_pressure_at_the_limits_it_is_given():
    assert diagnose(pressure=PressureLimits(70, 90), verdict=judge(10, 10), now=NOW, cpu_pct=75.0, utilization_at=ago(60)).code == "resource_pressure"
    assert diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW, cpu_pct=75.0, utilization_at=ago(60)) is None


def test_it_diagnoses_a_stored_worker_from_its_signals_and_latest_sample():
    worker = SimpleNamespace(
        last_seen_at=ago(10), last_heartbeat_at=ago(10), last_ping_at=None, registered_at=ago(86400), event_4502_count=0,
        cpu_pct=97.0, mem_pct=40.0, utilization_at=ago(60), os_type="Windows", worker_type="HybridV2",
        vm_resource_id="", machine_status="", extension_state="", extension_message="",
    )
    assert [d.code for d in worker_diagnoses(worker, now=NOW, thresholds=T, pressure=LIMITS)] == ["resource_pressure"]
