"""Machine state from ARM for V2 workers: Arc-enabled servers (azure-mgmt-hybridcompute) and Azure
VMs (azure-mgmt-compute). One of the SDK-importing modules (with ``client``, ``arm`` and ``metrics``).

Batched per resource group: one ``machines.list_by_resource_group`` per Arc resource group (status,
lastStatusChange) plus one ``machine_extensions.list`` per Arc machine of ours (the Hybrid Worker
extension's provisioningState), and one ``virtual_machines.list(expand="instanceView")`` per VM
resource group (power state and extension statuses in one answer). Returns ``MachineRecord``s keyed
by the lower-cased vmResourceId; raises our ``AzureError`` / ``AzureTransientError``.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from azure.core.exceptions import AzureError as _SdkAzureError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.hybridcompute import HybridComputeManagementClient

from workers.azure.arm import arm_client_kwargs, make_credential, map_sdk_error, shared_throttle
from workers.azure.connection import ConnectionSettings
from workers.azure.records import MachineRecord

logger = logging.getLogger(__name__)

HYBRID_WORKER_PUBLISHER = "microsoft.azure.automation.hybridworker"


def split_resource_id(resource_id: str) -> tuple[str, str, str, str] | None:
    """(subscription, resource group, kind "arc"/"azure_vm", name) of a vmResourceId, or None."""
    parts = [p for p in resource_id.strip().split("/") if p]
    low = [p.lower() for p in parts]
    if len(parts) != 8 or low[0] != "subscriptions" or low[2] != "resourcegroups" or low[4] != "providers":
        return None
    if (low[5], low[6]) == ("microsoft.hybridcompute", "machines"):
        return parts[1], parts[3], "arc", parts[7]
    if (low[5], low[6]) == ("microsoft.compute", "virtualmachines"):
        return parts[1], parts[3], "azure_vm", parts[7]
    return None


def _text(value: Any) -> str:
    """An SDK enum member or a plain string (the service may send values the enum lacks) as text."""
    return str(getattr(value, "value", value) or "")


def _is_hybrid_worker(publisher: str | None, ext_type: str | None) -> bool:
    return HYBRID_WORKER_PUBLISHER in (publisher or "").lower() or "hybridworkerfor" in (ext_type or "").lower()


class MachineReader:
    """Reads the machines behind workers, per subscription; use as a context manager."""

    def __init__(self, conn: ConnectionSettings, *, credential: Any = None) -> None:
        self.conn = conn
        self._credential = credential
        self._throttle = shared_throttle(conn)  # the Automation client's read budget, shared
        self._clients: list[Any] = []

    def _cred(self) -> Any:
        if self._credential is None:
            self._credential = make_credential(self.conn)
        return self._credential

    def _kwargs(self) -> dict[str, Any]:
        return arm_client_kwargs(self.conn, self._throttle)

    def read(self, resource_ids: Iterable[str]) -> dict[str, MachineRecord]:
        """The state of every machine named (unknown forms skipped), keyed by lower-cased resource id."""
        wanted: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)  # (sub, rg, kind) -> name -> id
        for rid in resource_ids:
            parsed = split_resource_id(rid)
            if parsed is not None:
                sub, rg, kind, name = parsed
                wanted[(sub.lower(), rg.lower(), kind)][name.lower()] = rid.strip().lower()
        found: dict[str, MachineRecord] = {}
        for (sub, rg, kind), names in sorted(wanted.items()):
            reader = self._arc if kind == "arc" else self._vms
            try:
                found.update(reader(sub, rg, names))
            except _SdkAzureError as exc:
                raise map_sdk_error(exc, f"reading {kind} machines of resource group {rg}") from exc
        return found

    def _arc(self, sub: str, rg: str, names: dict[str, str]) -> dict[str, MachineRecord]:
        client = HybridComputeManagementClient(self._cred(), sub, **self._kwargs())
        self._clients.append(client)
        out: dict[str, MachineRecord] = {}
        for machine in client.machines.list_by_resource_group(rg):
            rid = names.get((machine.name or "").lower())
            if rid is None:
                continue
            props = machine.properties
            state, message = "Missing", ""
            for ext in client.machine_extensions.list(rg, machine.name or ""):
                ep = ext.properties
                if ep is not None and _is_hybrid_worker(ep.publisher, ep.type):
                    state = _text(ep.provisioning_state)
                    status = ep.instance_view.status if ep.instance_view is not None else None
                    message = (status.message or "") if status is not None and state.lower() != "succeeded" else ""
                    break
            out[rid] = MachineRecord(
                resource_id=rid, kind="arc", status=_text(props.status) if props else "",
                status_changed_at=props.last_status_change if props else None,
                extension_state=state, extension_message=message[:300],
            )
        return out

    def _vms(self, sub: str, rg: str, names: dict[str, str]) -> dict[str, MachineRecord]:
        client = ComputeManagementClient(self._cred(), sub, **self._kwargs())
        self._clients.append(client)
        out: dict[str, MachineRecord] = {}
        for vm in client.virtual_machines.list(rg, expand="instanceView"):
            rid = names.get((vm.name or "").lower())
            if rid is None:
                continue
            view = vm.properties.instance_view if vm.properties is not None else None
            codes = [s.code or "" for s in (view.statuses or [])] if view else []
            power = next((c.split("/", 1)[1] for c in codes if c.startswith("PowerState/")), "")
            state, message = "Missing", ""
            for ext in (view.extensions or []) if view else []:
                if _is_hybrid_worker(None, ext.type):
                    status = next((s for s in ext.statuses or [] if (s.code or "").startswith("ProvisioningState/")), None)
                    code = status.code.split("/")[1] if status is not None and status.code else ""
                    state = code.capitalize()
                    message = (status.message or "") if status is not None and code != "succeeded" else ""
                    break
            out[rid] = MachineRecord(
                resource_id=rid, kind="azure_vm", status=power, status_changed_at=None,
                extension_state=state, extension_message=message[:300],
            )
        return out

    def close(self) -> None:
        for client in self._clients + [self._credential]:
            close = getattr(client, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # closing must never mask the real outcome
                    logger.debug("closing a machine client failed: %s", exc)
        self._clients = []
        self._credential = None

    def __enter__(self) -> MachineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
