"""Pure rules: what a probable cause means and how to fix it, per worker platform and OS.

A 2026 fleet is extension-based (V2: ``workerType`` "HybridV2", the Hybrid Worker VM extension on an
Azure VM or an Arc-enabled server, service ``HybridWorkerService`` on Windows / daemon ``hwd`` on
Linux, the Arc agent ``himds``, the Azure Monitor Agent ``AzureMonitorAgent`` / ``azuremonitoragent``
for heartbeats). Agent-based (V1, "HybridV1") workers ran inside the Log Analytics agent
(``healthservice``), retired on 31 August 2024; since 1 April 2025 their jobs no longer run, so every
V1 remedy ends with "migrate to V2". Worker type and OS are open sets: anything not V1 is judged as
V2, and an unknown OS gets both commands. The sources are listed in docs/diagnosis.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from workers.rules.health import is_v1_worker

V1_JOBS_STOPPED = "1 April 2025"
MIGRATE_V1 = (
    " Then migrate it to an extension-based (V2) worker: agent-based (V1) workers were retired on 31 August 2024 "
    f"and their jobs no longer run since {V1_JOBS_STOPPED}."
)


@dataclass(frozen=True)
class Platform:
    """A worker's platform and OS as the remedies need them."""

    v1: bool
    os: str  # "windows" | "linux" | "" (unknown)
    machine: str  # "arc" | "azure_vm" | "" (no vmResourceId, or another provider)

    def pick(self, *, windows: str, linux: str) -> str:
        """The OS's command, or both, labelled, when the OS is unknown."""
        if self.os == "windows":
            return windows
        if self.os == "linux":
            return linux
        return f"Windows: {windows} Linux: {linux}"


def machine_kind(vm_resource_id: str) -> str:
    """"arc" (Microsoft.HybridCompute/machines), "azure_vm" (Microsoft.Compute/virtualMachines) or ""."""
    rid = vm_resource_id.strip().lower()
    if "/providers/microsoft.hybridcompute/machines/" in rid:
        return "arc"
    if "/providers/microsoft.compute/virtualmachines/" in rid:
        return "azure_vm"
    return ""


def platform(*, worker_type: str, os_type: str, vm_resource_id: str = "") -> Platform:
    os_name = os_type.strip().lower()
    return Platform(
        v1=is_v1_worker(worker_type),
        os=os_name if os_name in {"windows", "linux"} else "",
        machine=machine_kind(vm_resource_id),
    )


# --- V2 (extension-based) -------------------------------------------------------------------------

WIN_SERVICE_FIX = (
    "On the machine, as administrator: Start-Service HybridWorkerService (check: Get-Service HybridWorkerService). "
    "If it stops again, read C:\\HybridWorkerExtensionLogs and run the troubleshooter "
    "C:\\Packages\\Plugins\\Microsoft.Azure.Automation.HybridWorker.HybridWorkerForWindows\\<version>\\bin\\troubleshooter\\"
    "TroubleShootWindowsExtension.ps1."
)
LINUX_SERVICE_FIX = (
    "On the machine: sudo systemctl restart hwd (check: systemctl status hwd). If it stops again, read "
    "/var/log/azure/Microsoft.Azure.Automation.HybridWorker.HybridWorkerForLinux and /home/hweautomation."
)


def service_stopped_fix(p: Platform) -> str:
    return p.pick(windows=WIN_SERVICE_FIX, linux=LINUX_SERVICE_FIX)


def _machine_check(p: Platform) -> str:
    if p.machine == "azure_vm":
        return "Check the VM is running (portal or az vm get-instance-view: PowerState/running)"
    if p.machine == "arc":
        return p.pick(
            windows="Check the machine is up and its Arc agent connected (azcmagent show; Restart-Service himds)",
            linux="Check the machine is up and its Arc agent connected (azcmagent show; sudo systemctl restart himds)",
        )
    return "Check the machine is running and on the network"


def machine_down_fix(p: Platform) -> str:
    """Every signal silent on a V2 worker: the machine first, then both services."""
    services = p.pick(
        windows="Start-Service HybridWorkerService, AzureMonitorAgent (as administrator).",
        linux="sudo systemctl restart hwd azuremonitoragent.",
    )
    return f"{_machine_check(p)}; then restart the Hybrid Worker service and the Azure Monitor Agent: {services}"


def outbound_fix(p: Platform) -> str:
    fix = (
        "Allow outbound TCP 443 from the machine to *.azure-automation.net (the account's jrds and agentsvc "
        "endpoints); check the proxy settings"
    )
    if p.v1:
        return fix + "." + MIGRATE_V1
    return fix + (
        " and the Arc agent's proxy (azcmagent config get proxy.url)." if p.machine == "arc" else "."
    )


def identity_fix(p: Platform) -> str:
    where = {
        "azure_vm": "of the VM (portal > VM > Identity > System assigned: On, or az vm identity assign)",
        "arc": "of the Arc-enabled server (it is part of the Arc agent: azcmagent show; re-onboard if missing)",
    }.get(p.machine, "of the machine")
    return (
        f"Enable the system-assigned managed identity {where}, grant it the roles the runbooks need, then delete "
        "and reinstall the Hybrid Worker extension."
    )


JOB_LIMIT_FIX = (
    "Add Hybrid Workers to the group, or spread the schedules: a worker picks up about four jobs per 30-second poll."
)


def vm_stopped_fix(status: str) -> str:
    what = "deallocated (its compute released)" if "dealloc" in status else "stopped"
    return f"The VM is {what}: start it (portal, Start-AzVM or az vm start), then check the Hybrid Worker extension reports Succeeded."


def arc_fix(p: Platform, status: str) -> str:
    if status.lower() == "expired":
        return (
            "The Arc agent's identity expired (disconnected for more than 45 days): disconnect and re-onboard the "
            "machine (azcmagent disconnect, then azcmagent connect), then reinstall the Hybrid Worker extension."
        )
    restart = p.pick(windows="Restart-Service himds", linux="sudo systemctl restart himds")
    return (
        f"On the machine: azcmagent show, then {restart}; azcmagent check tests outbound 443 to the Arc endpoints "
        "(proxy, firewall, DNS)."
    )


def extension_fix(p: Platform, state: str) -> str:
    where = "VM" if p.machine == "azure_vm" else "Arc machine" if p.machine == "arc" else "machine"
    if state.lower() == "missing":
        return (
            "Reinstall the Hybrid Worker extension: add the machine to the group again (portal > Hybrid worker "
            f"group > Add), or deploy the extension to the {where}."
        )
    return (
        f"Read the extension's status message (portal > {where} > Extensions > HybridWorkerExtension), fix what it "
        "names (system-assigned managed identity, Arc agent, Private Link, group deleted), then remove and reinstall "
        "the Hybrid Worker extension."
    )


# --- V1 (agent-based, retired) -------------------------------------------------------------------


def v1_agent_fix(p: Platform) -> str:
    restart = p.pick(
        windows="Start-Service healthservice (as administrator); check the machine is running.",
        linux="sudo /opt/microsoft/omsagent/bin/service_control restart; check the machine is running.",
    )
    return restart + MIGRATE_V1


V1_TLS_FIX = (
    "Exempt *.azure-automation.net, *.ods.opinsights.azure.com, *.oms.opinsights.azure.com and "
    "*.blob.core.windows.net from TLS inspection on the proxy/firewall, then restart the agent." + MIGRATE_V1
)


def never_reported_fix(p: Platform) -> str:
    if p.v1:
        return "Do not repair a V1 registration: deploy an extension-based (V2) worker on the machine instead."
    return (
        "Check the Hybrid Worker extension's provisioning state and status message on the machine, the machine's "
        "system-assigned managed identity"
        + (" and its Arc agent (azcmagent show)" if p.machine == "arc" else "")
        + ", and outbound 443 to *.azure-automation.net."
    )
