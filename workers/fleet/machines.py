"""Machine state of V2 workers (writes): the slow poll of ARM for each worker's vmResourceId.

Every ``POLL_MACHINES_SECONDS`` (default 300) per account: the Arc status / VM power state and the
Hybrid Worker extension's provisioning state of the machines behind the account's current V2
workers, read in batches per resource group (``workers.azure.machines``), stored on the workers
(``machine_status``, ``machine_status_changed_at``, ``extension_state``, ``extension_message``,
``machine_checked_at``) for the diagnosis. A machine ARM no longer lists keeps its last state
(with its old ``machine_checked_at``). Safe to run twice: it only overwrites with what ARM says.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from workers.azure.connection import connection_from_account
from workers.azure.machines import MachineReader, split_resource_id
from workers.azure.records import MachineRecord
from workers.models import AutomationAccount, HybridWorker


@dataclass(frozen=True)
class MachinePollOutcome:
    machines: int  # machines ARM answered for
    updated: int  # workers written


def machine_workers(account_id: int) -> list[HybridWorker]:
    """The account's current V2 workers with a vmResourceId of an Arc server or an Azure VM."""
    workers = (
        HybridWorker.objects.filter(group__account_id=account_id, removed_at__isnull=True)
        .exclude(worker_type__iexact="HybridV1")
        .exclude(vm_resource_id="")
        .order_by("pk")
    )
    return [w for w in workers if split_resource_id(w.vm_resource_id) is not None]


def apply_machine_states(workers: list[HybridWorker], found: dict[str, MachineRecord], *, now: datetime) -> int:
    """Store what ARM said on each worker; the status-change time is ARM's (Arc lastStatusChange),
    else the first poll that saw the new status. Returns how many workers were written."""
    changed: list[HybridWorker] = []
    for worker in workers:
        record = found.get(worker.vm_resource_id.strip().lower())
        if record is None:
            continue
        if record.status_changed_at is not None:
            worker.machine_status_changed_at = record.status_changed_at
        elif record.status != worker.machine_status or worker.machine_status_changed_at is None:
            worker.machine_status_changed_at = now
        worker.machine_status = record.status[:32]
        worker.extension_state = record.extension_state[:32]
        worker.extension_message = record.extension_message[:300]
        worker.machine_checked_at = now
        changed.append(worker)
    with transaction.atomic():
        HybridWorker.objects.bulk_update(
            changed,
            ["machine_status", "machine_status_changed_at", "extension_state", "extension_message", "machine_checked_at"],
            batch_size=500,
        )
    return len(changed)


def poll_machines(account_id: int, *, now: datetime | None = None, credential: object = None) -> MachinePollOutcome:
    """Read and store the machine state of one account's V2 workers (raises ``AzureError``)."""
    now = now or timezone.now()
    account = AutomationAccount.objects.get(pk=account_id)
    workers = machine_workers(account_id)
    if not workers:
        return MachinePollOutcome(0, 0)
    with MachineReader(connection_from_account(account), credential=credential) as reader:
        found = reader.read(w.vm_resource_id for w in workers)
    return MachinePollOutcome(len(found), apply_machine_states(workers, found, now=now))
