"""The CPU/memory pressure failure mode end to end: the emulator's ``under_spec`` scenario (a machine
below the minimum hardware) through the real pipeline (poll through the SDK over HTTPS ->
refresh_statuses -> process_outbox -> send_pending over real SMTP), on a manual clock.

The under_spec worker never goes offline, so this is the only email it gets: one PRESSURE alert
with the pressure diagnosis, and one recovery after the scenario ends. Nothing is mocked.
"""
from __future__ import annotations

import re

import pytest

from tests.alerting.test_alert_emulator import Pipeline, kinds
from tests.fixtures.smtp import html_part, text_part
from workers.models import Alert, AlertKind, AlertState

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def pipe(make_emulator, mailbox):
    emu = make_emulator(seed=11, groups=3, workers=8, history_days=1 / 24, page_size=50, scenarios=False)
    pipeline = Pipeline(emu)
    pipeline.step(0)
    pipeline.run(minutes=4)  # settle: every worker online, heartbeats and CPU/memory samples ingested
    return pipeline


def test_it_sends_one_pressure_email_and_a_recovery_for_an_under_spec_worker(pipe, mailbox):
    victim = pipe.victim()
    pipe.emu.start_scenario("under_spec", victim.name, 25)
    pipe.run(minutes=24)
    assert kinds(mailbox) == ["PRESSURE"]
    subject = mailbox.subjects()[0]
    assert subject.startswith(f"PRESSURE {victim.name} (group {victim.group.name}) — ")
    assert re.search(r"— (CPU|memory) \d+ % for 15 min: jobs ", subject)
    text = text_part(mailbox.messages[0])
    assert "Probable cause: CPU/memory pressure" in text
    assert "below the minimum hardware" in text
    assert re.search(r"CPU: p50 \d+ %, max \d+ %", text)
    assert "Probable cause: CPU/memory pressure" in html_part(mailbox.messages[0])
    alert = Alert.objects.get(kind=AlertKind.PRESSURE)
    assert list(alert.members.values_list("worker__name", flat=True)) == [victim.name]
    pipe.run(minutes=20)
    assert kinds(mailbox) == ["PRESSURE", "RECOVERED"]
    assert re.fullmatch(
        rf"RECOVERED {re.escape(victim.name)} from CPU/memory pressure after \d+ min \(group {re.escape(victim.group.name)}\)",
        mailbox.subjects()[1],
    )
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert alert.resolved_at > alert.opened_at
    assert not Alert.objects.exclude(kind=AlertKind.PRESSURE).exists()
