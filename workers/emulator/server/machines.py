"""The ARM routes of the machines behind V2 workers: Arc-enabled servers and Azure VMs.

``GET .../resourceGroups/{rg}/providers/Microsoft.HybridCompute/machines`` (status, lastStatusChange),
``GET .../Microsoft.HybridCompute/machines/{m}/extensions`` (provisioningState, instanceView) and
``GET .../resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines?$expand=instanceView``
(power state and extension statuses in the instance view), shaped like the azure-rest-api-specs
examples (Machines_ListByResourceGroup, MachineExtensions_List, VirtualMachines_List). Read from the
simulation at its now (``simulation.machines``). Registered by overriding ``ArmRoutes._arm``.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from workers.emulator.server.arm import ArmRoutes
from workers.emulator.server.formats import arm_dt
from workers.emulator.server.plumbing import Reply
from workers.emulator.simulation.machines import EXTENSION_NAME, EXTENSION_PUBLISHER, EXTENSION_VERSION, machine_state


class MachineRoutes(ArmRoutes):
    """Arc machines, their extensions and Azure VMs of the simulated fleet; everything else to ``ArmRoutes``."""

    def _arm(self, segs: list[str], low: list[str], query: str) -> None:
        if len(low) >= 7 and low[2] == "resourcegroups" and low[4] == "providers" and low[5] in {
            "microsoft.hybridcompute", "microsoft.compute"
        }:
            return self._machines(segs, low, query)
        return super()._arm(segs, low, query)

    def _machines(self, segs: list[str], low: list[str], query: str) -> None:
        sim = self.emu.sim
        if low[1] != sim.subscription_id.lower():
            raise Reply(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        if not (parse_qs(query).get("api-version") or [""])[0]:
            raise Reply(400, "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.")
        now = sim.clock.now()
        sim.ensure(now)
        rg, provider, rest = low[3], low[5], low[6:]
        kind = "arc" if provider == "microsoft.hybridcompute" else "azure_vm"
        with sim.lock:
            states = [(w, machine_state(w, sim._scenarios_by_worker.get(w.index, ()), now)) for w in sim.workers]
        mine = [(w, m) for w, m in states if m.kind == kind and m.resource_group.lower() == rg]
        base = "/" + "/".join(segs[:6])
        if kind == "arc" and rest == ["machines"]:
            return self._json(200, {"value": [self._arc_json(base, w, m) for w, m in mine]})
        if kind == "arc" and len(rest) == 3 and rest[0] == "machines" and rest[2] == "extensions":
            found = next(((w, m) for w, m in mine if m.name.lower() == rest[1]), None)
            if found is None:
                raise Reply(404, "ResourceNotFound", f"The Resource 'Microsoft.HybridCompute/machines/{segs[7]}' was not found.")
            w, m = found
            value = [self._arc_extension_json(base, w, m)] if m.extension_state else []
            return self._json(200, {"value": value})
        if kind == "azure_vm" and rest == ["virtualmachines"]:
            expand = (parse_qs(query).get("$expand") or [""])[0].lower() == "instanceview"
            return self._json(200, {"value": [self._vm_json(base, w, m, expand) for w, m in mine]})
        raise Reply(404, "NotFound", f"The resource path '/{'/'.join(segs)}' is not served by the emulator.")

    @staticmethod
    def _extension_type(w: Any) -> str:
        return "HybridWorkerForWindows" if w.os_type == "Windows" else "HybridWorkerForLinux"

    def _arc_json(self, base: str, w: Any, m: Any) -> dict[str, Any]:
        return {
            "id": f"{base}/machines/{m.name}",
            "name": m.name,
            "type": "Microsoft.HybridCompute/machines",
            "location": "westeurope",
            "identity": {"type": "SystemAssigned", "principalId": w.vm_uuid, "tenantId": w.source_computer_id},
            "properties": {
                "provisioningState": "Succeeded",
                "status": m.status,
                "lastStatusChange": arm_dt(m.status_changed),
                "agentVersion": "1.48.02881.1941",
                "osName": w.os_type.lower(),
                "osType": w.os_type.lower(),
                "displayName": m.name,
                "machineFqdn": f"{m.name}.corp.contoso.com",
                "vmId": w.vm_uuid,
            },
        }

    def _arc_extension_json(self, base: str, w: Any, m: Any) -> dict[str, Any]:
        ok = m.extension_state == "Succeeded"
        return {
            "id": f"{base}/machines/{m.name}/extensions/{EXTENSION_NAME}",
            "name": EXTENSION_NAME,
            "type": "Microsoft.HybridCompute/machines/extensions",
            "location": "westeurope",
            "properties": {
                "publisher": EXTENSION_PUBLISHER,
                "type": self._extension_type(w),
                "typeHandlerVersion": EXTENSION_VERSION,
                "autoUpgradeMinorVersion": True,
                "enableAutomaticUpgrade": True,
                "provisioningState": m.extension_state,
                "instanceView": {
                    "name": EXTENSION_NAME,
                    "type": self._extension_type(w),
                    "typeHandlerVersion": EXTENSION_VERSION,
                    "status": {
                        "code": "success" if ok else "failed",
                        "level": "Information" if ok else "Error",
                        "displayStatus": "Provisioning succeeded" if ok else "Provisioning failed",
                        "message": "Hybrid Worker registered" if ok else m.extension_message,
                    },
                },
            },
        }

    def _vm_json(self, base: str, w: Any, m: Any, expand: bool) -> dict[str, Any]:
        props: dict[str, Any] = {"vmId": w.vm_uuid, "provisioningState": "Succeeded"}
        if expand:
            power = {"running": "VM running", "deallocated": "VM deallocated"}.get(m.status, m.status)
            extensions = []
            if m.extension_state:
                ok = m.extension_state == "Succeeded"
                extensions.append({
                    "name": EXTENSION_NAME,
                    "type": f"{EXTENSION_PUBLISHER}.{self._extension_type(w)}",
                    "typeHandlerVersion": EXTENSION_VERSION,
                    "statuses": [{
                        "code": f"ProvisioningState/{'succeeded' if ok else 'failed/-1'}",
                        "level": "Info" if ok else "Error",
                        "displayStatus": "Provisioning succeeded" if ok else "Provisioning failed",
                        "message": "Hybrid Worker registered" if ok else m.extension_message,
                    }],
                })
            props["instanceView"] = {
                "computerName": w.name,
                "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
                     "time": arm_dt(m.status_changed)},
                    {"code": f"PowerState/{m.status}", "level": "Info", "displayStatus": power},
                ],
                "extensions": extensions,
            }
        return {
            "id": f"{base}/virtualMachines/{m.name}", "name": m.name, "type": "Microsoft.Compute/virtualMachines",
            "location": "westeurope", "identity": {"type": "SystemAssigned", "principalId": w.vm_uuid},
            "properties": props,
        }
