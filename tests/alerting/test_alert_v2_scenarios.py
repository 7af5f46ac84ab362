"""V2 first, V1 honest, end to end: the emulator's V2 scenarios through the real SDK, the real
pipeline (poll -> refresh -> outbox -> SMTP via aiosmtpd) and the worker page (Django test client,
judged at the emulator's manual clock). Each names the platform's cause and fix; a V1 worker's says V1.
"""
from __future__ import annotations

import pytest
import time_machine

from tests.alerting.test_alert_emulator import Pipeline, kinds
from tests.fixtures.smtp import text_part
from workers.models import HybridWorker, WorkerGroup

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def pipe(make_emulator, mailbox):
    # seed 11, 4 groups: the System and legacy groups (V1), one Linux and one Windows group of V2 workers.
    emu = make_emulator(seed=11, groups=4, workers=12, history_days=1 / 24, page_size=50, scenarios=False)
    pipeline = Pipeline(emu)
    pipeline.step(0)
    pipeline.run(minutes=4)
    return pipeline


def v2_group(os_type: str) -> WorkerGroup:
    return next(
        g for g in WorkerGroup.objects.filter(group_type="User").order_by("name")
        if g.workers.filter(worker_type="HybridV2", os_type=os_type).count() >= 2
    )


def v2_member(os_type: str) -> HybridWorker:
    return v2_group(os_type).workers.filter(status="online").order_by("name").first()


def page(client, pipe, worker: HybridWorker) -> str:
    with time_machine.travel(pipe.emu.clock.now(), tick=False):
        response = client.get(f"/workers/{worker.pk}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(("os_type", "fix", "absent"), [
    ("Linux", "sudo systemctl restart hwd", "HybridWorkerService"),
    ("Windows", "Start-Service HybridWorkerService", "systemctl"),
])
def test_a_stopped_v2_worker_service_is_named_with_the_fix_for_its_os(pipe, mailbox, client_in, os_type, fix, absent):
    victim = v2_member(os_type)
    pipe.emu.start_scenario("service_stopped", victim.name, 15)
    pipe.run(minutes=9)
    assert kinds(mailbox) == ["DOWN"]
    assert "Hybrid Worker service stopped" in mailbox.subjects()[0]
    text = text_part(mailbox.messages[0])
    assert fix in text and absent not in text
    assert "healthservice" not in text and "omsagent" not in text
    assert "Log Analytics Heartbeat: FRESH" in text  # the Azure Monitor Agent keeps sending
    body = page(client_in, pipe, victim)
    assert "Probable cause: Hybrid Worker service stopped." in body and fix in body
    assert "healthservice" not in body
    pipe.run(minutes=8)
    assert kinds(mailbox) == ["DOWN", "RECOVERED"]


def test_a_v1_worker_is_told_it_is_v1_and_to_migrate(pipe, mailbox, client_in):
    victim = HybridWorker.objects.get(group__name="hrw-win-legacy")
    assert victim.worker_type == "HybridV1"
    pipe.emu.start_scenario("agent_stopped", victim.name, 15)
    pipe.run(minutes=14)
    assert kinds(mailbox) == ["DOWN"]
    assert "Log Analytics agent stopped (V1 worker)" in mailbox.subjects()[0]
    text = text_part(mailbox.messages[0])
    assert "Start-Service healthservice" in text and "migrate it to an extension-based (V2) worker" in text
    assert "agent-based (V1, retired 31 Aug 2024" in text
    body = page(client_in, pipe, victim)
    assert "Log Analytics agent stopped (V1 worker)" in body and "This is an agent-based (V1) worker" in body


def test_a_v2_machine_silent_everywhere_gets_the_machine_and_both_services(pipe, mailbox, client_in):
    victim = v2_member("Windows")
    pipe.emu.start_scenario("agent_stopped", victim.name, 15)
    pipe.run(minutes=14)
    assert kinds(mailbox) == ["DOWN"]
    assert "Machine or Hybrid Worker service down" in mailbox.subjects()[0]
    text = text_part(mailbox.messages[0])
    assert "Start-Service HybridWorkerService, AzureMonitorAgent" in text and "healthservice" not in text


def test_jobs_failing_to_authenticate_name_the_missing_managed_identity(pipe, client_in):
    group = v2_group("Linux")
    pipe.emu.start_scenario("identity_missing", group.name, 120)
    pipe.run(minutes=45, seconds=60)
    assert group.jobs.filter(status="Failed", exception__icontains="ManagedIdentityCredential").exists()
    member = group.workers.filter(status="online").order_by("name").first()
    body = page(client_in, pipe, member)
    assert "Probable cause: Managed identity missing." in body
    assert "system-assigned managed identity" in body


def test_jobs_suspended_at_the_job_limit_name_the_job_limit(pipe, client_in):
    group = v2_group("Windows")
    pipe.emu.start_scenario("job_limit", group.name, 120)
    pipe.run(minutes=45, seconds=60)
    assert group.jobs.filter(status="Suspended", exception__icontains="exceeded the job limit").exists()
    body = page(client_in, pipe, group.workers.order_by("name").first())
    assert "Probable cause: Hybrid Worker job limit exceeded." in body and "Add Hybrid Workers to the group" in body
