"""The fleet model: Hybrid Worker groups and their workers, built once from the seed.

One System group of leftovers, one single-member legacy group (both agent-based V1, retired), then
Linux and Windows groups per site of extension-based (V2) workers on Azure VMs and Arc-enabled
servers; each worker gets its identity (ids, IPs, VM/Arc resource id), agent flavour and phases.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from workers.emulator.simulation.noise import guid

HEARTBEAT_SECONDS = 60
LAST_SEEN_SECONDS = 30


class SimulationError(ValueError):
    """A caller asked for something the simulation cannot do (unknown target, bad kind, ...)."""


@dataclass
class SimGroup:
    index: int
    name: str
    group_type: str  # "User" / "System"
    created: datetime
    members: list[int] = field(default_factory=list)
    credential: str | None = None


@dataclass
class SimWorker:
    index: int
    worker_id: str
    name: str
    group: str
    os_type: str  # "Windows" / "Linux"
    worker_type: str  # "HybridV1" / "HybridV2"
    ip: str
    private_ip: str
    vm_resource_id: str
    registered: datetime
    hb_phase: int
    poll_phase: int
    source_computer_id: str
    vm_uuid: str
    total_mb: int
    agent_version: str
    category: str
    cpu_object: str
    cpu_instance: str
    # VM insights: CPU/memory go to InsightsMetrics instead of Perf (an AMA data collection rule for
    # VM insights; about one V2 machine in five, chosen by index so the seed's other draws stay put).
    vm_insights: bool = False


SITES = ("prod", "dmz", "batch", "paris", "dublin", "ohio", "edge", "lab", "sap", "finance")


def _group_names(count: int) -> list[tuple[str, str]]:
    """(name, os) for ``count`` groups: one System leftover, one single-member legacy group, the rest."""
    names: list[tuple[str, str]] = []
    if count >= 1:
        names.append(("update-management-system", "Windows"))
    if count >= 2:
        names.append(("hrw-win-legacy", "Windows"))
    i = 0
    while len(names) < count:
        os_name = "linux" if i % 2 == 0 else "win"
        site = SITES[(i // 2) % len(SITES)]
        cycle = i // (2 * len(SITES))
        name = f"hrw-{os_name}-{site}" + (f"-{cycle + 1:02d}" if cycle else "")
        names.append((name, "Linux" if os_name == "linux" else "Windows"))
        i += 1
    return names


class Fleet:
    """Groups and workers of one Automation account, and lookups by name or id."""

    seed: int
    subscription_id: str
    history_start: datetime
    groups: list[SimGroup]
    workers: list[SimWorker]
    _group_by_name: dict[str, SimGroup]
    _worker_by_name: dict[str, SimWorker]
    _worker_by_id: dict[str, SimWorker]

    def _build_fleet(self, n_groups: int, n_workers: int) -> None:
        rng = np.random.default_rng([self.seed, 10])
        specs = _group_names(n_groups)
        sizes = [0] * n_groups
        if n_groups == 1:
            sizes[0] = n_workers
        else:
            sizes[0] = min(2, n_workers - (n_groups - 1))  # System leftovers
            sizes[1] = 1  # single-member group: no high availability
            rest = n_workers - sizes[0] - sizes[1]
            others = n_groups - 2
            if others == 0:
                sizes[0] += rest
            else:
                weights = rng.uniform(0.6, 1.4, size=others)
                alloc = np.maximum(1, np.floor(weights / weights.sum() * rest)).astype(int)
                while alloc.sum() > rest:
                    alloc[int(np.argmax(alloc))] -= 1
                i = 0
                while alloc.sum() < rest:
                    alloc[i % others] += 1
                    i += 1
                sizes[2:] = [int(a) for a in alloc]
        counters = {"Windows": 0, "Linux": 0}
        for gi, ((name, os_type), size) in enumerate(zip(specs, sizes, strict=True)):
            group_type = "System" if name == "update-management-system" and n_groups > 1 else "User"
            created = self.history_start - timedelta(days=int(rng.integers(60, 700)))
            group = SimGroup(
                index=gi,
                name=name,
                group_type=group_type,
                created=created,
                credential="hrw-runas" if rng.random() < 0.5 and group_type == "User" else None,
            )
            for _ in range(size):
                counters[os_type] += 1
                n = counters[os_type]
                prefix = "hrw-win" if os_type == "Windows" else "hrw-lin"
                if group_type == "System":
                    prefix = "upd-win"
                worker_name = f"{prefix}-{n:02d}"
                # A 2026 estate: extension-based (V2) workers everywhere but the retired leftovers (the
                # System group and the single-member legacy group stay agent-based V1). The draws of
                # the old mix are kept so every other property of a seed's fleet stays the same.
                retired = group_type == "System" or name == "hrw-win-legacy"
                old_mix_v1 = retired or rng.random() < 0.3
                worker_type = "HybridV1" if retired else "HybridV2"
                idx = len(self.workers)
                ip = f"10.{(idx // 250) % 250}.{idx % 250}.{4 + gi % 200}"
                arc = rng.random() < 0.4
                no_machine = old_mix_v1 and rng.random() < 0.5
                if worker_type == "HybridV1" and no_machine:
                    vm_id = ""
                elif arc:
                    vm_id = (
                        f"/subscriptions/{self.subscription_id}/resourceGroups/rg-arc/providers/"
                        f"Microsoft.HybridCompute/machines/{worker_name}"
                    )
                else:
                    vm_id = (
                        f"/subscriptions/{self.subscription_id}/resourceGroups/rg-vms/providers/"
                        f"Microsoft.Compute/virtualMachines/{worker_name}"
                    )
                ama = worker_type == "HybridV2"
                if os_type == "Windows":
                    cpu_object = "Processor Information" if ama else "Processor"
                    cpu_instance = "_Total"
                    version = "1.30.2" if ama else "10.20.18069.0"
                else:
                    cpu_object = "Processor"
                    cpu_instance = "total" if ama else "_Total"
                    version = "1.30.2" if ama else "1.19.2"
                worker = SimWorker(
                    index=idx,
                    worker_id=guid(rng),
                    name=worker_name,
                    group=name,
                    os_type=os_type,
                    worker_type=worker_type,
                    ip=f"20.61.{(idx // 250) % 250}.{idx % 250}",
                    private_ip=ip,
                    vm_resource_id=vm_id,
                    registered=created + timedelta(hours=float(rng.uniform(1, 24 * 30))),
                    hb_phase=int(rng.integers(0, HEARTBEAT_SECONDS)),
                    poll_phase=int(rng.integers(0, LAST_SEEN_SECONDS)),
                    source_computer_id=guid(rng),
                    vm_uuid=guid(rng),
                    total_mb=int(rng.choice([8192, 16384, 32768])),
                    agent_version=version,
                    category="Azure Monitor Agent" if ama else "Direct Agent",
                    cpu_object=cpu_object,
                    cpu_instance=cpu_instance,
                    vm_insights=ama and bool(vm_id) and idx % 5 == 2,
                )
                group.members.append(idx)
                self.workers.append(worker)
                self._worker_by_name[worker_name.lower()] = worker
                self._worker_by_id[worker.worker_id.lower()] = worker
            self.groups.append(group)
            self._group_by_name[name.lower()] = group

    # ---------------------------------------------------------------------------------- lookups

    def group(self, name: str) -> SimGroup | None:
        return self._group_by_name.get(name.lower())

    def worker(self, name: str) -> SimWorker | None:
        return self._worker_by_name.get(name.lower())

    def worker_by_id(self, worker_id: str) -> SimWorker | None:
        return self._worker_by_id.get(worker_id.lower())
