"""Alerting end to end against the emulator over HTTPS with a manual clock: the real pipeline
(poll through the SDK -> refresh_statuses -> process_outbox -> send_pending over real SMTP).

Each ``step`` is one beat of every periodic task at the simulated time. Scenario signatures come
from the emulator (see workers/emulator/simulation/); nothing is mocked.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.fixtures.smtp import text_part
from workers.alerting.outbox import process_outbox
from workers.alerting.sending import send_pending
from workers.fleet import polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.status import refresh_statuses
from workers.models import Alert, AlertKind, AutomationAccount, HybridWorker, WorkerGroup

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
STEP = 30  # seconds: the worker poll interval


class Pipeline:
    def __init__(self, emu) -> None:
        self.emu = emu
        self.account: AutomationAccount = add_account_from_connection_file(emu.connection_file)[0]

    def step(self, seconds: int = STEP) -> None:
        if seconds:
            self.emu.clock.advance(seconds)
        now = self.emu.clock.now()
        polling.poll_account_once(self.account.pk, now=now)
        refresh_statuses(self.account.pk, now=now)
        process_outbox(now=now)
        send_pending(now=now)

    def run(self, minutes: float, seconds: int = STEP) -> None:
        for _ in range(int(minutes * 60 // seconds)):
            self.step(seconds)

    def victim(self) -> HybridWorker:
        """An online worker of the largest group (so it is not the group's only member)."""
        group = max(WorkerGroup.objects.all(), key=lambda g: g.workers.count())
        return group.workers.filter(status="online").order_by("name").first()


@pytest.fixture
def pipe(make_emulator, mailbox):
    emu = make_emulator(seed=11, groups=3, workers=8, history_days=1 / 24, page_size=50, scenarios=False)
    pipeline = Pipeline(emu)
    pipeline.step(0)
    pipeline.run(minutes=4)  # settle: every worker online, heartbeats ingested
    return pipeline


def kinds(box) -> list[str]:
    return [s.split()[0] for s in box.subjects()]


def test_it_sends_one_diagnosed_email_and_a_recovery_when_the_agent_stops(pipe, mailbox):
    victim = pipe.victim()
    pipe.emu.start_scenario("agent_stopped", victim.name, 15)
    pipe.run(minutes=14)
    assert kinds(mailbox) == ["DOWN"]
    assert victim.name in mailbox.subjects()[0]
    # A V2 Linux worker (the 2026 estate): the machine, then the worker service and the Azure Monitor Agent.
    assert "Machine or Hybrid Worker service down" in mailbox.subjects()[0]
    assert "sudo systemctl restart hwd azuremonitoragent" in text_part(mailbox.messages[0])
    pipe.run(minutes=6)
    assert kinds(mailbox) == ["DOWN", "RECOVERED"]


def test_it_names_blocked_outbound_443_while_heartbeats_continue(pipe, mailbox):
    victim = pipe.victim()
    pipe.emu.start_scenario("outbound_blocked", victim.name, 10)
    pipe.run(minutes=9)
    assert kinds(mailbox) == ["DOWN"]
    text = text_part(mailbox.messages[0])
    # On a V2 worker a stopped worker service reads the same as blocked outbound 443: both are named.
    assert "Hybrid Worker service stopped" in mailbox.subjects()[0]
    assert "Also possible: Outbound 443 to Azure Automation blocked" in text
    assert "Log Analytics Heartbeat: FRESH" in text
    pipe.run(minutes=4)
    assert kinds(mailbox) == ["DOWN", "RECOVERED"]


def test_it_names_tls_interception_with_the_event_4502_count(pipe, mailbox):
    # Event 4502 comes from the Log Analytics agent on Windows: only the V1 worker of the legacy group has it.
    victim = HybridWorker.objects.get(group__name="hrw-win-legacy")
    pipe.emu.start_scenario("tls_intercepted", victim.name, 15)
    pipe.run(minutes=14)
    assert kinds(mailbox) == ["DOWN"]
    assert "TLS interception by a proxy" in mailbox.subjects()[0]
    victim.refresh_from_db()
    assert victim.event_4502_count > 0
    # The email carries the count seen when it was sent; more events may have arrived since.
    match = re.search(r"(\d+) event 4502", text_part(mailbox.messages[0]))
    assert match is not None
    assert 1 <= int(match.group(1)) <= victim.event_4502_count
    pipe.run(minutes=6)
    assert kinds(mailbox) == ["DOWN", "RECOVERED"]


def test_it_sends_one_rollup_email_when_a_site_goes_down(pipe, mailbox):
    group = pipe.victim().group
    members = sorted(group.workers.values_list("name", flat=True))
    pipe.emu.start_scenario("site_down", group.name, 15)
    pipe.run(minutes=14)
    assert kinds(mailbox) == ["DOWN"]
    text = text_part(mailbox.messages[0])
    assert all(name in text for name in members)
    assert "The group has NO online worker: queued jobs will fail." in text
    assert Alert.objects.get(kind=AlertKind.GROUP_ROLLUP).members.count() == len(members)
    pipe.run(minutes=6)
    assert kinds(mailbox) == ["DOWN", "RECOVERED"]


def test_it_sends_one_blind_alert_and_no_worker_storm_when_azure_is_unreachable(pipe, mailbox, settings):
    settings.AZURE_RETRY_TOTAL = 0  # every poll fails fast; the SDK's own retries would only add minutes
    pipe.emu.inject_fault("503", count=10_000, route="any")
    pipe.run(minutes=15)
    assert kinds(mailbox) == ["BLIND"]
    assert not Alert.objects.filter(kind__in=[AlertKind.WORKER_DOWN, AlertKind.GROUP_ROLLUP], notified_at__isnull=False).exists()
    pipe.emu.clear_faults()
    pipe.run(minutes=4)
    assert kinds(mailbox) == ["BLIND", "RESTORED"]


def test_it_sends_one_flapping_alert_for_a_flapping_worker(pipe, mailbox, settings):
    settings.FLAP_TRANSITIONS = 4
    victim = pipe.victim()
    WorkerGroup.objects.filter(pk=victim.group_id).update(grace_seconds=90)
    pipe.emu.start_scenario("flapping", victim.name, 40)
    pipe.run(minutes=40)
    assert kinds(mailbox).count("FLAPPING") == 1
    assert len(mailbox.subjects()) <= 4  # at most DOWN, RECOVERED, DOWN before the flapping email
    assert Alert.objects.filter(kind=AlertKind.FLAPPING).count() == 1


def test_it_holds_an_outage_in_maintenance_and_alerts_when_the_window_ends(pipe, mailbox):
    from workers.alerting.maintenance import create_maintenance_window

    victim = pipe.victim()
    now = pipe.emu.clock.now()
    create_maintenance_window(reason="patching", worker=victim, starts_at=now, ends_at=now + timedelta(minutes=15))
    pipe.emu.start_scenario("agent_stopped", victim.name, 30)
    pipe.run(minutes=14)
    assert kinds(mailbox) == []
    pipe.run(minutes=2)
    assert kinds(mailbox) == ["DOWN"]
    pipe.run(minutes=18)
    assert kinds(mailbox) == ["DOWN", "RECOVERED"]
