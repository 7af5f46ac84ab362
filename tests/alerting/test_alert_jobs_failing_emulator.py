"""The emulator's identity_missing and job_limit scenarios end to end: jobs through the real SDK (list
and GET of each failed job for its exception) -> the outbox -> one FAILING email per group over real
SMTP (aiosmtpd), naming the cause with the fix the worker page shows, and RECOVERED once jobs run again.
"""
from __future__ import annotations

import html

import pytest

from tests.alerting.test_alert_emulator import Pipeline, kinds
from tests.alerting.test_alert_v2_scenarios import page, v2_group
from tests.fixtures.smtp import text_part
from workers.models import Alert, AlertKind
from workers.rules import remedies

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def pipe(make_emulator, mailbox):
    # seed 11, 4 groups: the System and legacy groups (V1), one Linux and one Windows group of V2 workers.
    emu = make_emulator(seed=11, groups=4, workers=12, history_days=1 / 24, page_size=50, scenarios=False)
    pipeline = Pipeline(emu)
    pipeline.step(0)
    pipeline.run(minutes=4)
    return pipeline


def test_a_missing_managed_identity_pages_once_for_the_group_with_the_fix_then_recovers(pipe, mailbox, client_in):
    group = v2_group("Linux")
    pipe.emu.start_scenario("identity_missing", group.name, 20)
    pipe.run(minutes=20, seconds=60)
    assert kinds(mailbox) == ["FAILING"], mailbox.subjects()
    subject = mailbox.subjects()[0]
    assert group.name in subject and "Managed identity missing" in subject
    text = text_part(mailbox.messages[0])
    member = group.workers.filter(status="online").order_by("name").first()
    fix = remedies.identity_fix(remedies.platform(worker_type=member.worker_type, os_type=member.os_type,
                                                  vm_resource_id=member.vm_resource_id))
    assert fix in text and "ManagedIdentityCredential" in text
    assert "healthservice" not in text
    body = html.unescape(page(client_in, pipe, member))
    assert "Probable cause: Managed identity missing." in body and fix in body  # the page and the email agree
    # One alert, for this group only (the emulator's other jobs fail for other reasons now and then).
    assert set(Alert.objects.filter(kind=AlertKind.JOBS_FAILING).values_list("group_id", flat=True)) == {group.pk}
    pipe.run(minutes=25, seconds=60)  # the scenario ended at 20 min: jobs complete again
    assert kinds(mailbox) == ["FAILING", "RECOVERED"], mailbox.subjects()
    assert group.name in mailbox.subjects()[1]
    assert Alert.objects.filter(kind=AlertKind.JOBS_FAILING).count() == 1


def test_jobs_suspended_at_the_job_limit_page_once_with_the_fix(pipe, mailbox):
    group = v2_group("Windows")
    pipe.emu.start_scenario("job_limit", group.name, 120)
    pipe.run(minutes=35, seconds=60)
    assert kinds(mailbox) == ["FAILING"], mailbox.subjects()
    assert group.name in mailbox.subjects()[0] and "Hybrid Worker job limit exceeded" in mailbox.subjects()[0]
    text = text_part(mailbox.messages[0])
    assert remedies.JOB_LIMIT_FIX in text and "exceeded the job limit" in text
    assert set(Alert.objects.filter(kind=AlertKind.JOBS_FAILING).values_list("group_id", flat=True)) == {group.pk}
    # No other kind of page: the members stay online.
    assert not Alert.objects.exclude(kind=AlertKind.JOBS_FAILING).exists()
