"""Pure rules naming what is wrong with a worker or group: flags (facts worth a badge) and diagnoses
(probable causes from Microsoft's Hybrid Runbook Worker troubleshooting guide, each with its fix).

The alert emails and the worker page call ``diagnoses`` with the same verdict, signals and
``PressureLimits`` (from settings), so they name the same cause.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, TypedDict, Unpack

from workers.rules import remedies
from workers.rules.health import Status, StatusVerdict, is_single_member, is_system_group, is_v1_worker, worker_status
from workers.rules.pressure import PressureLimits, is_recent
from workers.rules.signals import AUTOMATION, HEARTBEAT, PING, Thresholds

# Agent-based (V1) Hybrid Runbook Workers were retired by Microsoft on this date.
V1_RETIREMENT_DATE = date(2024, 8, 31)


@dataclass(frozen=True)
class Flag:
    """A fact about a worker or group worth a badge on the pages."""

    code: str  # single_member | v1_worker | system_group | never_reported
    label: str
    detail: str


def is_never_reported(*, registered_at: datetime | None, last_seen_at: datetime | None, last_heartbeat_at: datetime | None) -> bool:
    """Registered in Automation, but neither signal was ever received."""
    return registered_at is not None and last_seen_at is None and last_heartbeat_at is None


def group_flags(*, group_type: str, member_count: int) -> list[Flag]:
    """The badges a group earns: single member (no high availability), System group."""
    flags: list[Flag] = []
    if is_single_member(member_count):
        flags.append(
            Flag("single_member", "Single member", "Only one worker: no high availability; if it stops, the group's jobs fail.")
        )
    if is_system_group(group_type):
        flags.append(
            Flag("system_group", "System group", "Created by Update Management; it does not run user runbooks.")
        )
    return flags


def worker_flags(
    *,
    worker_type: str,
    registered_at: datetime | None,
    last_seen_at: datetime | None,
    last_heartbeat_at: datetime | None,
) -> list[Flag]:
    """The badges a worker earns: V1 (retired platform), never reported."""
    flags: list[Flag] = []
    if is_v1_worker(worker_type):
        flags.append(
            Flag(
                "v1_worker",
                "V1 (retired)",
                f"Agent-based V1 worker: Microsoft retired this platform on {V1_RETIREMENT_DATE:%d %B %Y}; "
                "migrate it to the extension-based V2 worker.",
            )
        )
    if is_never_reported(registered_at=registered_at, last_seen_at=last_seen_at, last_heartbeat_at=last_heartbeat_at):
        flags.append(
            Flag("never_reported", "Never reported", "Registered, but no lastSeen and no heartbeat was ever received.")
        )
    return flags


@dataclass(frozen=True)
class Diagnosis:
    """A probable cause named from Microsoft's Hybrid Runbook Worker troubleshooting guides, with the
    fix for the worker's platform (V2 / V1) and OS (see ``workers.rules.remedies``)."""

    code: str  # see DIAGNOSIS_CODES
    title: str
    detail: str
    fix: str


DIAGNOSIS_CODES = (
    "vm_stopped", "arc_disconnected", "extension_failed", "tls_interception", "identity_missing",
    "service_stopped", "outbound_blocked", "agent_stopped", "job_limit", "resource_pressure", "never_reported",
)

# Job evidence: how far back a group's jobs count, and the error texts that name each cause.
JOB_EVIDENCE_WINDOW = timedelta(hours=1)
AUTH_ERROR_MARKERS = (
    "invalid authorization token", "managedidentitycredential", "managed identity", "imds identity endpoint",
)
JOB_LIMIT_MARKER = "exceeded the job limit for a hybrid worker"
VM_STOPPED_STATES = {"stopped", "deallocated", "stopping", "deallocating"}
ARC_DOWN_STATES = {"disconnected", "expired", "error"}
EXTENSION_BAD_STATES = {"failed", "missing"}


class JobFacts(Protocol):
    """What the job evidence reads of a job (a stored ``Job`` has it)."""

    status: str
    exception: str
    created_at: datetime


@dataclass(frozen=True)
class JobEvidence:
    """The group's recent jobs that name a cause: auth failures (identity) and job-limit suspensions."""

    auth_failures: int = 0
    job_limit: int = 0


def job_evidence(jobs: Iterable[JobFacts], *, now: datetime, window: timedelta = JOB_EVIDENCE_WINDOW) -> JobEvidence:
    """Count the jobs created within ``window`` before ``now`` whose error names a cause."""
    auth = limit = 0
    for job in jobs:
        if job.created_at < now - window or job.created_at > now:
            continue
        text = (job.exception or "").lower()
        if job.status in {"Failed", "Suspended"} and any(m in text for m in AUTH_ERROR_MARKERS):
            auth += 1
        elif job.status == "Suspended" and JOB_LIMIT_MARKER in text:
            limit += 1
    return JobEvidence(auth_failures=auth, job_limit=limit)


class DiagnosisSignals(TypedDict, total=False):
    """The optional signals of :func:`diagnoses`, so :func:`diagnose` can pass them on unchanged."""

    event_4502_count: int
    cpu_pct: float | None
    mem_pct: float | None
    utilization_at: datetime | None
    os_type: str
    worker_type: str
    vm_resource_id: str
    machine_status: str
    extension_state: str
    extension_message: str
    jobs: JobEvidence


def _machine_causes(p: remedies.Platform, *, machine_status: str, extension_state: str, extension_message: str,
                    online: bool) -> list[Diagnosis]:
    """What ARM says about the machine behind the worker (the slow machine poll)."""
    found: list[Diagnosis] = []
    status = machine_status.strip().lower()
    if not online and p.machine == "azure_vm" and status in VM_STOPPED_STATES:
        found.append(Diagnosis(
            "vm_stopped", "VM deallocated" if "dealloc" in status else "VM stopped",
            f"Azure reports the virtual machine's power state as {machine_status}: nothing runs on it, so the "
            "worker cannot poll Automation.",
            remedies.vm_stopped_fix(status),
        ))
    if not online and p.machine == "arc" and status in ARC_DOWN_STATES:
        found.append(Diagnosis(
            "arc_disconnected", f"Arc agent {machine_status.lower()}",
            f"Azure Arc reports the server as {machine_status}: its Connected Machine agent (himds) has stopped "
            "reporting (machine off, agent stopped, or outbound 443 blocked), and the Hybrid Worker extension "
            "depends on it for the machine's identity.",
            remedies.arc_fix(p, status),
        ))
    state = extension_state.strip().lower()
    if not p.v1 and state in EXTENSION_BAD_STATES:
        message = f" Status message: {extension_message[:200]}" if extension_message else ""
        found.append(Diagnosis(
            "extension_failed",
            "Hybrid Worker extension removed" if state == "missing" else "Hybrid Worker extension failed",
            ("The machine has no Hybrid Worker extension any more: the worker cannot run jobs."
             if state == "missing" else
             f"The Hybrid Worker extension's provisioning state is {extension_state}.") + message,
            remedies.extension_fix(p, state),
        ))
    return found


def diagnoses(
    *,
    verdict: StatusVerdict,
    now: datetime,
    pressure: PressureLimits,
    event_4502_count: int = 0,
    cpu_pct: float | None = None,
    mem_pct: float | None = None,
    utilization_at: datetime | None = None,
    os_type: str = "",
    worker_type: str = "",
    vm_resource_id: str = "",
    machine_status: str = "",
    extension_state: str = "",
    extension_message: str = "",
    jobs: JobEvidence | None = None,
) -> list[Diagnosis]:
    """Every probable cause matching the signals, most specific first (empty when nothing fits).

    Causes and fixes depend on the platform: V2 (anything not "HybridV1": the Hybrid Worker service,
    the extension, the Arc agent, the Azure Monitor Agent) or V1 (the Log Analytics agent, event 4502,
    always with "migrate to V2"), and on the OS. ``pressure`` is the one pair of CPU/memory limits
    (``PressureLimits.from_settings()``). ``jobs``: the group's recent job evidence (``job_evidence``).
    """
    p = remedies.platform(worker_type=worker_type, os_type=os_type, vm_resource_id=vm_resource_id)
    found = _machine_causes(p, machine_status=machine_status, extension_state=extension_state,
                            extension_message=extension_message, online=verdict.status == Status.ONLINE)
    automation = verdict.signal(AUTOMATION)
    heartbeat = verdict.signal(HEARTBEAT)
    ping = verdict.signal(PING)
    # The service is unheard when lastSeen is stale and the ping (if the worker has one) is too.
    automation_stale = automation is not None and automation.state in {"late", "offline"} and (ping is None or ping.state != "fresh")
    heartbeat_fresh = heartbeat is not None and heartbeat.state == "fresh"
    evidence = jobs or JobEvidence()

    # Event 4502 comes from the Log Analytics agent (healthservice) on Windows: only a V1 worker has it.
    if p.v1 and p.os != "linux" and event_4502_count > 0:
        found.append(Diagnosis(
            "tls_interception", "TLS interception by a proxy",
            f"{event_4502_count} event 4502 in the Operations Manager log: a certificate presented to the agent "
            "was not issued by a certificate authority used for Microsoft services.",
            remedies.V1_TLS_FIX,
        ))
    if not p.v1 and evidence.auth_failures and not automation_stale:
        found.append(Diagnosis(
            "identity_missing", "Managed identity missing",
            f"{evidence.auth_failures} job(s) of the group failed with a managed-identity authentication error in the "
            "last hour while the worker keeps polling Automation: the machine's system-assigned managed identity is "
            "disabled or was removed (Azure does not say which member ran a job).",
            remedies.identity_fix(p),
        ))
    if automation_stale and heartbeat_fresh:
        outbound = Diagnosis(
            "outbound_blocked", "Outbound 443 to Azure Automation blocked",
            "Log Analytics heartbeats still arrive but Automation has not seen the worker: the machine "
            "cannot reach *.azure-automation.net on port 443 (proxy or firewall).",
            remedies.outbound_fix(p),
        )
        if not p.v1:
            # The AMA heartbeat and the worker are separate processes: a stopped worker service reads the same.
            name = p.pick(windows="HybridWorkerService", linux="hwd")
            found.append(Diagnosis(
                "service_stopped", "Hybrid Worker service stopped",
                f"The Azure Monitor Agent still sends heartbeats but Automation has not seen the worker: the Hybrid "
                f"Worker service ({name}) has stopped polling, so the group's jobs are not picked up here.",
                remedies.service_stopped_fix(p),
            ))
        found.append(outbound)
    if verdict.status == Status.OFFLINE:
        if p.v1:
            found.append(Diagnosis(
                "agent_stopped", "Log Analytics agent stopped (V1 worker)",
                "Every liveness signal is silent: the Log Analytics agent (healthservice), which runs this "
                "agent-based worker, or the machine itself is down.",
                remedies.v1_agent_fix(p),
            ))
        else:
            with_heartbeat = heartbeat is not None and heartbeat.state != "missing"
            heard = "Neither Automation nor the Azure Monitor Agent heartbeat hears" if with_heartbeat else "Automation does not hear"
            found.append(Diagnosis(
                "agent_stopped", "Machine or Hybrid Worker service down",
                f"{heard} from the machine: it is off or unreachable, or the Hybrid Worker service "
                "stopped (with the Azure Monitor Agent).",
                remedies.machine_down_fix(p),
            ))
    if evidence.job_limit:
        found.append(Diagnosis(
            "job_limit", "Hybrid Worker job limit exceeded",
            f"{evidence.job_limit} job(s) of the group were suspended in the last hour because they exceeded the job "
            "limit of a Hybrid Worker: jobs arrive faster than the members pick them up.",
            remedies.JOB_LIMIT_FIX,
        ))
    cpu_high, mem_high = pressure.cpu_high(cpu_pct), pressure.mem_high(mem_pct)
    if is_recent(utilization_at, now=now) and (cpu_high or mem_high):
        parts = []
        if cpu_high:
            parts.append(f"CPU {cpu_pct:.0f} %")
        if mem_high:
            parts.append(f"memory {mem_pct:.0f} %")
        found.append(Diagnosis(
            "resource_pressure", "CPU/memory pressure",
            f"{' and '.join(parts)} (latest sample): the machine may be below the minimum hardware, "
            "which delays and times out jobs.",
            "Add CPU/memory to the machine (minimum 2 cores, 4 GB RAM) or add workers to the group.",
        ))
    if verdict.status == Status.NEVER:
        found.append(Diagnosis(
            "never_reported", "Registered but never reported",
            "The worker is registered in Automation but has never polled it.",
            remedies.never_reported_fix(p),
        ))
    return found


def diagnose(
    *, verdict: StatusVerdict, now: datetime, pressure: PressureLimits, **signals: Unpack[DiagnosisSignals]
) -> Diagnosis | None:
    """The most specific probable cause, or None when the signals name none.

    Order: what ARM says of the machine (VM stopped, Arc agent disconnected, extension failed) > TLS
    interception (V1 only: event 4502 is conclusive) > managed identity missing (auth failures while
    the worker polls) > service stopped (V2) / outbound 443 blocked (heartbeat fresh, lastSeen stale)
    > machine or agent down (every signal offline) > job limit > CPU/memory pressure > never reported.
    """
    found = diagnoses(verdict=verdict, now=now, pressure=pressure, **signals)
    return found[0] if found else None


class WorkerFacts(Protocol):
    """What a diagnosis reads of a worker (a stored ``HybridWorker`` has all of it)."""

    last_seen_at: datetime | None
    last_heartbeat_at: datetime | None
    last_ping_at: datetime | None
    registered_at: datetime | None
    event_4502_count: int
    cpu_pct: float | None
    mem_pct: float | None
    utilization_at: datetime | None
    os_type: str
    worker_type: str
    vm_resource_id: str
    machine_status: str
    extension_state: str
    extension_message: str


def worker_signals(worker: WorkerFacts, *, jobs: JobEvidence | None = None) -> DiagnosisSignals:
    """The stored facts of one worker as the optional signals of :func:`diagnoses` (pages and emails)."""
    return DiagnosisSignals(
        event_4502_count=worker.event_4502_count,
        cpu_pct=worker.cpu_pct,
        mem_pct=worker.mem_pct,
        utilization_at=worker.utilization_at,
        os_type=worker.os_type,
        worker_type=worker.worker_type,
        vm_resource_id=worker.vm_resource_id,
        machine_status=worker.machine_status,
        extension_state=worker.extension_state,
        extension_message=worker.extension_message,
        jobs=jobs or JobEvidence(),
    )


def worker_diagnoses(
    worker: WorkerFacts, *, now: datetime, thresholds: Thresholds, pressure: PressureLimits,
    recent_jobs: Iterable[JobFacts] = (),
) -> list[Diagnosis]:
    """Every probable cause for one worker from its stored signals, latest utilization sample, machine
    state and its group's recent jobs (``recent_jobs``), as the worker page shows them
    (``thresholds`` already carry the group's grace period)."""
    verdict = worker_status(
        now=now,
        last_seen_at=worker.last_seen_at,
        last_heartbeat_at=worker.last_heartbeat_at,
        registered_at=worker.registered_at,
        thresholds=thresholds,
        last_ping_at=worker.last_ping_at,
    )
    evidence = job_evidence(recent_jobs, now=now)
    return diagnoses(verdict=verdict, now=now, pressure=pressure, **worker_signals(worker, jobs=evidence))
