"""Causes and fixes per worker platform (V2 / V1, an open set) and OS, machine state and job evidence;
V1 members never count as group capacity. Judged at an explicit frozen ``now``."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.rules.test_health import NOW, ago, judge
from workers.rules.diagnosis import diagnose, diagnoses, job_evidence
from workers.rules.health import GroupHealth, health_from_counts, summarize_members
from workers.rules.pressure import PressureLimits

LIMITS = PressureLimits(cpu_pct=85, mem_pct=90)
VM = "/subscriptions/0000/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/hrw-win-01"
ARC = "/subscriptions/0000/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/machines/hrw-lin-01"
AUTH = "Connect-AzAccount: ManagedIdentityCredential authentication failed: Unable to retrieve IMDS identity endpoint."
LIMIT = "Job was suspended as it exceeded the job limit for a Hybrid Worker. Add more Hybrid Workers to the Hybrid Worker group to overcome this issue."


def codes(found):
    return [d.code for d in found]


@pytest.mark.parametrize(("os_type", "present", "absent"), [
    ("Windows", ["HybridWorkerService", "AzureMonitorAgent"], ["hwd", "healthservice", "omsagent"]),
    ("Linux", ["systemctl restart hwd azuremonitoragent"], ["HybridWorkerService", "healthservice", "omsagent"]),
    ("", ["Windows: ", "HybridWorkerService", "Linux: ", "hwd"], ["healthservice"]),
])
def test_a_silent_v2_worker_gets_the_v2_services_of_its_os(os_type, present, absent):
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, worker_type="HybridV2", os_type=os_type)
    assert d.code == "agent_stopped" and d.title == "Machine or Hybrid Worker service down"
    assert all(p in d.fix for p in present), d.fix
    assert not any(a in d.fix for a in absent), d.fix


def test_an_unknown_worker_type_is_judged_as_v2():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, worker_type="HybridV3", os_type="Windows")
    assert "HybridWorkerService" in d.fix and "healthservice" not in d.fix


def test_a_silent_v2_arc_server_names_the_arc_agent():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, worker_type="HybridV2", os_type="Linux", vm_resource_id=ARC)
    assert "himds" in d.fix and "azcmagent show" in d.fix


def test_a_silent_v2_azure_vm_names_the_power_state():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, worker_type="HybridV2", os_type="Windows", vm_resource_id=VM)
    assert "PowerState/running" in d.fix


@pytest.mark.parametrize(("os_type", "command"), [("Windows", "Start-Service HybridWorkerService"), ("Linux", "sudo systemctl restart hwd")])
def test_a_v2_worker_with_fresh_heartbeat_and_stale_lastseen_has_its_service_stopped(os_type, command):
    found = diagnoses(verdict=judge(900, 30), now=NOW, pressure=LIMITS, worker_type="HybridV2", os_type=os_type)
    assert codes(found) == ["service_stopped", "outbound_blocked"]
    assert command in found[0].fix
    assert "healthservice" not in found[0].fix + found[1].fix


def test_a_v1_worker_names_the_log_analytics_agent_and_migration():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, worker_type="HybridV1", os_type="Windows")
    assert d.title == "Log Analytics agent stopped (V1 worker)"
    assert "Start-Service healthservice" in d.fix and "migrate it to an extension-based (V2) worker" in d.fix
    assert "HybridWorkerService" not in d.fix


def test_a_v1_worker_with_blocked_outbound_is_told_to_migrate():
    found = diagnoses(verdict=judge(900, 30), now=NOW, pressure=LIMITS, worker_type="HybridV1", os_type="Windows")
    assert codes(found) == ["outbound_blocked"] and "migrate" in found[0].fix


@pytest.mark.parametrize(("worker_type", "os_type"), [("HybridV2", "Windows"), ("HybridV1", "Linux"), ("HybridV2", "Linux")])
def test_event_4502_names_tls_interception_only_on_a_v1_windows_worker(worker_type, os_type):
    found = diagnoses(verdict=judge(900, 900), now=NOW, pressure=LIMITS, event_4502_count=5, worker_type=worker_type, os_type=os_type)
    assert "tls_interception" not in codes(found)


def test_event_4502_on_a_v1_windows_worker_names_tls_interception_and_migration():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 900), now=NOW, event_4502_count=5, worker_type="HybridV1", os_type="Windows")
    assert d.code == "tls_interception" and "migrate" in d.fix


def test_a_deallocated_vm_comes_first_for_an_offline_worker():
    found = diagnoses(verdict=judge(900, 900), now=NOW, pressure=LIMITS, worker_type="HybridV2", os_type="Windows",
                      vm_resource_id=VM, machine_status="deallocated")
    assert codes(found) == ["vm_stopped", "agent_stopped"]
    assert found[0].title == "VM deallocated" and "az vm start" in found[0].fix


def test_a_stopped_vm_is_no_cause_while_the_worker_is_online():
    found = diagnoses(verdict=judge(10, 10), now=NOW, pressure=LIMITS, worker_type="HybridV2", vm_resource_id=VM, machine_status="stopped")
    assert found == []


@pytest.mark.parametrize(("status", "fix"), [("Disconnected", "systemctl restart himds"), ("Expired", "azcmagent connect")])
def test_a_disconnected_or_expired_arc_agent(status, fix):
    found = diagnoses(verdict=judge(900, 900), now=NOW, pressure=LIMITS, worker_type="HybridV2", os_type="Linux",
                      vm_resource_id=ARC, machine_status=status)
    assert found[0].code == "arc_disconnected" and fix in found[0].fix


def test_an_arc_status_on_an_azure_vm_is_not_read_as_arc():
    found = diagnoses(verdict=judge(900, 900), now=NOW, pressure=LIMITS, worker_type="HybridV2", vm_resource_id=VM, machine_status="Disconnected")
    assert codes(found) == ["agent_stopped"]


def test_a_failed_extension_carries_its_status_message():
    found = diagnoses(verdict=judge(900, 30), now=NOW, pressure=LIMITS, worker_type="HybridV2", os_type="Windows",
                      vm_resource_id=VM, extension_state="Failed", extension_message="Invalid Authorization Token")
    assert codes(found)[0] == "extension_failed"
    assert "Invalid Authorization Token" in found[0].detail and "reinstall" in found[0].fix


def test_a_removed_extension_is_named():
    d = diagnose(pressure=LIMITS, verdict=judge(900, 30), now=NOW, worker_type="HybridV2", vm_resource_id=ARC, extension_state="Missing")
    assert d.code == "extension_failed" and d.title == "Hybrid Worker extension removed"


def test_a_v1_worker_has_no_extension_cause():
    found = diagnoses(verdict=judge(900, 900), now=NOW, pressure=LIMITS, worker_type="HybridV1", extension_state="Failed")
    assert "extension_failed" not in codes(found)


def _job(status, exception, seconds_ago):
    return SimpleNamespace(status=status, exception=exception, created_at=ago(seconds_ago))


def test_job_evidence_counts_auth_failures_and_job_limit_suspensions_in_the_window():
    jobs = [_job("Failed", AUTH, 60), _job("Failed", AUTH, 7200), _job("Suspended", LIMIT, 120), _job("Failed", "boom", 60),
            _job("Completed", "", 30)]
    evidence = job_evidence(jobs, now=NOW)
    assert (evidence.auth_failures, evidence.job_limit) == (1, 1)
    assert job_evidence(jobs, now=NOW, window=timedelta(hours=3)).auth_failures == 2


def test_a_polling_v2_worker_whose_jobs_fail_to_authenticate_has_no_managed_identity():
    evidence = job_evidence([_job("Failed", AUTH, 60)] * 3, now=NOW)
    d = diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW, worker_type="HybridV2", os_type="Windows", vm_resource_id=VM, jobs=evidence)
    assert d.code == "identity_missing" and "3 job(s)" in d.detail
    assert "system-assigned managed identity" in d.fix and "az vm identity assign" in d.fix


def test_job_limit_suspensions_name_the_job_limit():
    evidence = job_evidence([_job("Suspended", LIMIT, 60)] * 2, now=NOW)
    d = diagnose(pressure=LIMITS, verdict=judge(10, 10), now=NOW, worker_type="HybridV2", jobs=evidence)
    assert d.code == "job_limit" and "Add Hybrid Workers" in d.fix


# --- V1 members never count as capacity


def test_v1_members_are_not_online_capacity():
    s = summarize_members([("online", "HybridV2"), ("online", "HybridV1"), ("online", "hybridv1")])
    assert (s.total, s.online, s.v1) == (3, 1, 2)
    assert s.health == GroupHealth.HEALTHY  # every member that can run jobs is online
    assert s.label == "1 of 3 workers online (2 V1, retired: not counted)"


def test_a_group_of_only_v1_members_is_down():
    s = summarize_members([("online", "HybridV1"), ("online", "HybridV1")])
    assert s.online == 0 and s.health == GroupHealth.DOWN
    assert s.down_note == "only V1 (retired) members: none can run jobs"


def test_a_group_with_a_v2_member_offline_is_degraded_whatever_its_v1_members_do():
    assert health_from_counts(total=3, online=1, v1=1) == GroupHealth.DEGRADED
    assert health_from_counts(total=2, online=1, v1=1) == GroupHealth.HEALTHY
