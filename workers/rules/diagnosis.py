"""Pure rules naming what is wrong with a worker or group: flags (facts worth a badge) and diagnoses
(probable causes from Microsoft's Hybrid Runbook Worker troubleshooting guide, each with its fix).

The alert emails and the worker page call ``diagnoses`` with the same verdict, signals and
``PressureLimits`` (from settings), so they name the same cause.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, TypedDict, Unpack

from workers.rules.health import Status, StatusVerdict, is_single_member, is_system_group, worker_status
from workers.rules.pressure import PressureLimits, is_recent
from workers.rules.signals import AUTOMATION, HEARTBEAT, Thresholds

# Agent-based (V1) Hybrid Runbook Workers were retired by Microsoft on this date.
V1_RETIREMENT_DATE = date(2024, 8, 31)


@dataclass(frozen=True)
class Flag:
    """A fact about a worker or group worth a badge on the pages."""

    code: str  # single_member | v1_worker | system_group | never_reported
    label: str
    detail: str


def is_v1_worker(worker_type: str) -> bool:
    """An agent-based (V1) worker: a platform Microsoft retired on ``V1_RETIREMENT_DATE``."""
    return worker_type.strip().lower() == "hybridv1"


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
    """A probable cause named from Microsoft's Hybrid Runbook Worker troubleshooting guide."""

    code: str  # tls_interception | outbound_blocked | agent_stopped | resource_pressure | never_reported
    title: str
    detail: str
    fix: str


class DiagnosisSignals(TypedDict, total=False):
    """The optional signals of :func:`diagnoses`, so :func:`diagnose` can pass them on unchanged."""

    event_4502_count: int
    cpu_pct: float | None
    mem_pct: float | None
    utilization_at: datetime | None
    os_type: str


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
) -> list[Diagnosis]:
    """Every probable cause matching the signals, most specific first (empty when nothing fits).

    ``pressure`` is the one pair of CPU/memory limits (``PressureLimits.from_settings()``): a recent
    reading at or above either names CPU/memory pressure.
    """
    found: list[Diagnosis] = []
    automation = verdict.signal(AUTOMATION)
    heartbeat = verdict.signal(HEARTBEAT)
    automation_stale = automation is not None and automation.state in {"late", "offline"}
    heartbeat_fresh = heartbeat is not None and heartbeat.state == "fresh"

    if event_4502_count > 0:
        found.append(
            Diagnosis(
                "tls_interception",
                "TLS interception by a proxy",
                f"{event_4502_count} event 4502 in the Operations Manager log: a certificate presented to the agent "
                "was not issued by a certificate authority used for Microsoft services.",
                "Exempt *.azure-automation.net, *.ods.opinsights.azure.com, *.oms.opinsights.azure.com and "
                "*.blob.core.windows.net from TLS inspection on the proxy/firewall, then restart the agent.",
            )
        )
    if automation_stale and heartbeat_fresh:
        found.append(
            Diagnosis(
                "outbound_blocked",
                "Outbound 443 to Azure Automation blocked",
                "Log Analytics heartbeats still arrive but Automation has not seen the worker: the machine "
                "cannot reach *.azure-automation.net on port 443 (proxy or firewall).",
                "Allow outbound TCP 443 from the machine to *.azure-automation.net (and the account's "
                "jrds endpoint); check the proxy settings.",
            )
        )
    if verdict.status == Status.OFFLINE:
        linux = os_type.strip().lower() == "linux"
        found.append(
            Diagnosis(
                "agent_stopped",
                "Monitoring agent stopped",
                "Every liveness signal is silent: the Microsoft Monitoring Agent (healthservice) or the machine "
                "itself is down.",
                "sudo /opt/microsoft/omsagent/bin/service_control restart (Linux); on Windows: Start-Service healthservice"
                if linux
                else "Start-Service healthservice (on the machine, as administrator); check the machine is running.",
            )
        )
    cpu_high, mem_high = pressure.cpu_high(cpu_pct), pressure.mem_high(mem_pct)
    if is_recent(utilization_at, now=now) and (cpu_high or mem_high):
        parts = []
        if cpu_high:
            parts.append(f"CPU {cpu_pct:.0f} %")
        if mem_high:
            parts.append(f"memory {mem_pct:.0f} %")
        found.append(
            Diagnosis(
                "resource_pressure",
                "CPU/memory pressure",
                f"{' and '.join(parts)} (latest sample): the machine may be below the minimum hardware, "
                "which delays and times out jobs.",
                "Add CPU/memory to the machine (minimum 2 cores, 4 GB RAM) or add workers to the group.",
            )
        )
    if verdict.status == Status.NEVER:
        found.append(
            Diagnosis(
                "never_reported",
                "Registered but never reported",
                "The worker is registered in Automation but has never polled it.",
                "Check the Hybrid Worker extension (V2) or agent installation on the machine and its network access.",
            )
        )
    return found


def diagnose(
    *, verdict: StatusVerdict, now: datetime, pressure: PressureLimits, **signals: Unpack[DiagnosisSignals]
) -> Diagnosis | None:
    """The most specific probable cause, or None when the signals name none.

    Order: TLS interception (event 4502 is conclusive) > outbound 443 blocked (heartbeat fresh,
    lastSeen stale) > agent stopped (every signal offline) > CPU/memory pressure > never reported.
    """
    found = diagnoses(verdict=verdict, now=now, pressure=pressure, **signals)
    return found[0] if found else None


class WorkerFacts(Protocol):
    """What a diagnosis reads of a worker (a stored ``HybridWorker`` has all of it)."""

    last_seen_at: datetime | None
    last_heartbeat_at: datetime | None
    registered_at: datetime | None
    event_4502_count: int
    cpu_pct: float | None
    mem_pct: float | None
    utilization_at: datetime | None
    os_type: str


def worker_diagnoses(worker: WorkerFacts, *, now: datetime, thresholds: Thresholds, pressure: PressureLimits) -> list[Diagnosis]:
    """Every probable cause for one worker from its stored signals and latest utilization sample, as
    the worker page shows them (``thresholds`` already carry the group's grace period)."""
    verdict = worker_status(
        now=now,
        last_seen_at=worker.last_seen_at,
        last_heartbeat_at=worker.last_heartbeat_at,
        registered_at=worker.registered_at,
        thresholds=thresholds,
    )
    return diagnoses(
        verdict=verdict,
        now=now,
        pressure=pressure,
        event_4502_count=worker.event_4502_count,
        cpu_pct=worker.cpu_pct,
        mem_pct=worker.mem_pct,
        utilization_at=worker.utilization_at,
        os_type=worker.os_type,
    )
