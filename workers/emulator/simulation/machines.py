"""What ARM shows of the machine behind each worker: an Arc server's status, a VM's power state and
the Hybrid Worker extension's provisioning state, as the scenarios in force at ``now`` leave them.

The emulator's ``server/machines.py`` serves these on the Microsoft.HybridCompute and
Microsoft.Compute routes. A V1 worker has no Hybrid Worker extension.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from workers.emulator.simulation.clock import to_epoch
from workers.emulator.simulation.fleet import SimWorker
from workers.emulator.simulation.scenarios import Scenario

# The extension of an extension-based (V2) worker, as Azure names it.
EXTENSION_NAME = "HybridWorkerExtension"
EXTENSION_PUBLISHER = "Microsoft.Azure.Automation.HybridWorker"
EXTENSION_VERSION = "1.1.13"
EXTENSION_FAILED_MESSAGE = (
    "Enable failed: Hybrid Worker registration failed: Invalid Authorization Token. Enable the system-assigned "
    "managed identity of the machine, then reinstall the extension."
)


@dataclass(frozen=True)
class MachineState:
    kind: str  # "arc" | "azure_vm" | ""
    name: str
    resource_group: str
    status: str  # Arc: Connected / Disconnected; VM: running / deallocated
    status_changed: datetime
    extension_state: str  # Succeeded / Failed; "" when the worker has no extension (V1)
    extension_message: str


def machine_kind(vm_resource_id: str) -> str:
    rid = vm_resource_id.lower()
    if "/providers/microsoft.hybridcompute/machines/" in rid:
        return "arc"
    if "/providers/microsoft.compute/virtualmachines/" in rid:
        return "azure_vm"
    return ""


def machine_state(worker: SimWorker, scenarios: Iterable[Scenario], now: datetime) -> MachineState:
    """The machine of ``worker`` at ``now``: down while a vm_deallocated / arc_disconnected scenario
    holds it (since its start), the extension failed while an extension_failed one does."""
    kind = machine_kind(worker.vm_resource_id)
    parts = worker.vm_resource_id.split("/")
    t = to_epoch(now)
    down_kind = "arc_disconnected" if kind == "arc" else "vm_deallocated"
    changed = worker.registered
    down = failed = False
    for s in scenarios:
        if s.kind == down_kind:
            if s.t0 <= t < s.t1:
                down, changed = True, s.start
            elif s.t1 <= t and s.end > changed:
                changed = s.end
        if s.kind == "extension_failed" and s.t0 <= t < s.t1:
            failed = True
    if kind == "arc":
        status = "Disconnected" if down else "Connected"
    else:
        status = "deallocated" if down else "running"
    v2 = worker.worker_type != "HybridV1"
    return MachineState(
        kind=kind,
        name=parts[-1] if kind else "",
        resource_group=parts[4] if len(parts) > 4 else "",
        status=status,
        status_changed=changed,
        extension_state=("Failed" if failed else "Succeeded") if v2 else "",
        extension_message=EXTENSION_FAILED_MESSAGE if failed and v2 else "",
    )
