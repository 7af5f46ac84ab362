"""Machine state from ARM, end to end: the emulator's Arc / VM / extension routes read through the real
azure-mgmt-hybridcompute and azure-mgmt-compute clients (real ClientSecretCredential over HTTPS),
stored on the workers, and named with its fix on the worker page and in the DOWN email."""
from __future__ import annotations

import pytest
import time_machine

from tests.alerting.test_alert_emulator import Pipeline, kinds
from tests.fixtures.smtp import text_part
from workers.azure.machines import split_resource_id
from workers.fleet.machines import poll_machines
from workers.models import HybridWorker

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


class MachinePipeline(Pipeline):
    def step(self, seconds: int = 30) -> None:
        if seconds:
            self.emu.clock.advance(seconds)
        poll_machines(self.account.pk, now=self.emu.clock.now())  # before the alert renders
        super().step(0)


@pytest.fixture
def pipe(make_emulator, mailbox):
    emu = make_emulator(seed=11, groups=4, workers=12, history_days=1 / 24, page_size=50, scenarios=False)
    pipeline = MachinePipeline(emu)
    pipeline.step(0)
    pipeline.run(minutes=4)
    return pipeline


def member_on(kind: str) -> HybridWorker:
    """An online V2 worker on an Arc server / Azure VM, in a group of at least two."""
    for w in HybridWorker.objects.filter(worker_type="HybridV2", status="online").order_by("name"):
        parsed = split_resource_id(w.vm_resource_id)
        if parsed and parsed[2] == kind and w.group.workers.count() >= 2:
            return w
    raise AssertionError(f"no V2 worker on {kind}")


def page(client, pipe, worker) -> str:
    with time_machine.travel(pipe.emu.clock.now(), tick=False):
        return client.get(f"/workers/{worker.pk}/").content.decode()


def test_it_stores_the_machine_state_of_every_v2_worker(pipe):
    v2 = HybridWorker.objects.filter(worker_type="HybridV2").exclude(vm_resource_id="")
    assert v2.exists()
    for w in v2:
        kind = split_resource_id(w.vm_resource_id)[2]
        assert w.machine_status == ("Connected" if kind == "arc" else "running"), w.name
        assert w.extension_state == "Succeeded" and w.machine_checked_at == pipe.emu.clock.now()
    assert not HybridWorker.objects.filter(worker_type="HybridV1").exclude(machine_status="").exists()


def test_a_deallocated_vm_is_named_on_the_page_and_in_the_email(pipe, mailbox, client_in):
    victim = member_on("azure_vm")
    pipe.emu.start_scenario("vm_deallocated", victim.name, 20)
    pipe.run(minutes=14)
    victim.refresh_from_db()
    assert victim.machine_status == "deallocated"
    assert kinds(mailbox) == ["DOWN"] and "VM deallocated" in mailbox.subjects()[0]
    assert "az vm start" in text_part(mailbox.messages[0])
    body = page(client_in, pipe, victim)
    assert "Probable cause: VM deallocated." in body and "az vm start" in body


def test_a_disconnected_arc_agent_is_named_on_the_page_and_in_the_email(pipe, mailbox, client_in):
    victim = member_on("arc")
    pipe.emu.start_scenario("arc_disconnected", victim.name, 20)
    pipe.run(minutes=14)
    assert kinds(mailbox) == ["DOWN"] and "Arc agent disconnected" in mailbox.subjects()[0]
    text = text_part(mailbox.messages[0])
    assert "himds" in text and "azcmagent show" in text
    assert "Probable cause: Arc agent disconnected." in page(client_in, pipe, victim)


def test_a_failed_extension_is_named_with_its_status_message(pipe, mailbox, client_in):
    victim = member_on("azure_vm")
    pipe.emu.start_scenario("extension_failed", victim.name, 20)
    pipe.run(minutes=9)
    victim.refresh_from_db()
    assert victim.extension_state == "Failed" and "Invalid Authorization Token" in victim.extension_message
    assert kinds(mailbox) == ["DOWN"] and "Hybrid Worker extension failed" in mailbox.subjects()[0]
    assert "reinstall the Hybrid Worker extension" in text_part(mailbox.messages[0])
    body = page(client_in, pipe, victim)
    assert "Probable cause: Hybrid Worker extension failed." in body and "Invalid Authorization Token" in body


def test_a_machine_scenario_needs_the_right_kind_of_machine(pipe):
    from workers.emulator.simulation import SimulationError

    with pytest.raises(SimulationError, match="Arc-enabled server"):
        pipe.emu.start_scenario("arc_disconnected", member_on("azure_vm").name, 5)
    with pytest.raises(SimulationError, match="extension-based"):
        pipe.emu.start_scenario("service_stopped", "hrw-win-legacy", 5)
