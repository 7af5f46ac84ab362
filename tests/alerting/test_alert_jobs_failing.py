"""The jobs-failing alert on stored jobs (frozen times, real outbox, real SMTP via aiosmtpd): one email
per group, held in maintenance, reminders until acknowledged, never twice, RECOVERED once jobs run
again, and nothing for a group whose jobs fail for other reasons. The emulator's scenarios end to end
are in test_alert_jobs_failing_emulator.py."""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import pytest

from tests.alerting.factories import T0, make_fleet, tick
from tests.fixtures.smtp import text_part
from workers.alerting.jobs_failing import JOBS_FAILING_CLEAR_MINUTES
from workers.alerting.maintenance import create_maintenance_window
from workers.alerting.outbox import process_outbox
from workers.alerting.reminders import acknowledge, send_reminders
from workers.alerting.sending import send_pending
from workers.models import Alert, AlertKind, HybridWorker, Job, Notification, WorkerGroup

pytestmark = pytest.mark.django_db

IDENTITY = (
    "Connect-AzAccount: ManagedIdentityCredential authentication failed: Unable to retrieve IMDS identity endpoint."
)
LIMIT = "Job was suspended as it exceeded the job limit for a Hybrid Worker."
OTHER = "Runbook Export-Report threw: Cannot connect to sql-04."
_ids = count(1)


def job(group: WorkerGroup, status: str, exception: str, at: datetime) -> Job:
    return Job.objects.create(
        account=group.account, job_id=f"job-{next(_ids)}", runbook="Export-Report", status=status, run_on=group.name,
        group=group, created_at=at - timedelta(minutes=1), started_at=at - timedelta(seconds=30), ended_at=at,
        last_modified_at=at, exception=exception,
    )


def kinds(box) -> list[str]:
    return [s.split()[0] for s in box.subjects()]


def jobs_failing() -> list[Alert]:
    return list(Alert.objects.filter(kind=AlertKind.JOBS_FAILING).order_by("pk"))


def test_one_email_per_group_with_the_cause_and_the_fix_per_platform_then_recovered(mailbox):
    _account, group, workers = make_fleet()
    HybridWorker.objects.filter(pk=workers[0].pk).update(vm_resource_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm1")
    job(group, "Failed", IDENTITY, T0 - timedelta(minutes=3))
    tick(T0)
    assert jobs_failing() == [] and mailbox.subjects() == []  # one failed job is no page
    job(group, "Failed", IDENTITY, T0)
    tick(T0)
    process_outbox(now=T0)  # twice: still one alert, one email
    send_pending(now=T0)
    assert kinds(mailbox) == ["FAILING"]
    subject = mailbox.subjects()[0]
    assert "hrw-win" in subject and "Managed identity missing" in subject and "2 job(s)" in subject
    text = text_part(mailbox.messages[0])
    # The V2 fix, per machine: the Azure VM member gets the VM's identity blade, the others the machine's.
    assert "portal > VM > Identity > System assigned: On" in text and "(1 of 3: hrw-win-01)" in text
    assert "Enable the system-assigned managed identity of the machine" in text and "(2 of 3: hrw-win-02, hrw-win-03)" in text
    assert "ManagedIdentityCredential authentication failed" in text and "healthservice" not in text
    [alert] = jobs_failing()
    assert alert.members.count() == 3 and alert.next_reminder_at is not None
    # Fixed: a job completes after the last failure; RECOVERED once quiet for the clear window.
    later = T0 + timedelta(minutes=5)
    job(group, "Completed", "", later)
    tick(later)
    assert kinds(mailbox) == ["FAILING"]
    quiet = T0 + timedelta(minutes=JOBS_FAILING_CLEAR_MINUTES, seconds=1)
    tick(quiet)
    assert kinds(mailbox) == ["FAILING", "RECOVERED"]
    assert "hrw-win" in mailbox.subjects()[1]
    # The same old failures never reopen it.
    tick(quiet + timedelta(minutes=1))
    assert len(jobs_failing()) == 1 and kinds(mailbox) == ["FAILING", "RECOVERED"]


def test_job_limit_names_the_limit_and_other_failures_page_nobody(mailbox):
    account, group, _workers = make_fleet()
    linux = WorkerGroup.objects.get(name="hrw-linux")
    for minutes in (6, 4, 2):
        job(group, "Suspended", LIMIT, T0 - timedelta(minutes=minutes))
        job(linux, "Failed", OTHER, T0 - timedelta(minutes=minutes))
        job(linux, "Suspended", "The job action 'Activate' cannot be run, because the process stopped unexpectedly.",
            T0 - timedelta(minutes=minutes))
    tick(T0)
    assert kinds(mailbox) == ["FAILING"]
    assert "Hybrid Worker job limit exceeded" in mailbox.subjects()[0]
    assert "Add Hybrid Workers to the group" in text_part(mailbox.messages[0])
    assert [a.group_id for a in jobs_failing()] == [group.pk]


def test_v1_only_group_gets_no_identity_alert(mailbox):
    _account, group, _workers = make_fleet()
    HybridWorker.objects.filter(group=group).update(worker_type="HybridV1")
    for minutes in (3, 2, 1):
        job(group, "Failed", IDENTITY, T0 - timedelta(minutes=minutes))
    tick(T0)
    assert jobs_failing() == [] and mailbox.subjects() == []


def test_held_in_maintenance_and_sent_when_the_window_ends_if_jobs_still_fail(mailbox):
    _account, group, _workers = make_fleet()
    create_maintenance_window(reason="patching", group=group, starts_at=T0 - timedelta(minutes=1), ends_at=T0 + timedelta(minutes=10))
    for minutes in (2, 1, 0):
        job(group, "Failed", IDENTITY, T0 - timedelta(minutes=minutes))
    tick(T0)
    assert mailbox.subjects() == [] and jobs_failing()[0].suppressed == "maintenance"
    after = T0 + timedelta(minutes=11)
    job(group, "Failed", IDENTITY, after)
    tick(after)
    assert kinds(mailbox) == ["FAILING"]


def test_reminders_until_acknowledged(mailbox, settings):
    _account, group, _workers = make_fleet()
    for minutes in (2, 1):
        job(group, "Suspended", LIMIT, T0 - timedelta(minutes=minutes))
    tick(T0)
    [alert] = jobs_failing()
    hours = timedelta(hours=settings.ALERT_REMINDER_HOURS)
    # Still failing at the reminder time (fresh failures keep it open).
    at = T0 + hours
    job(group, "Suspended", LIMIT, at)
    tick(at)
    send_reminders(now=at)
    send_pending(now=at)
    assert kinds(mailbox) == ["FAILING", "STILL"]
    assert "STILL FAILING jobs of group hrw-win" in mailbox.subjects()[1]
    assert acknowledge(alert_id=alert.pk, user=None, now=at)
    later = at + hours
    job(group, "Suspended", LIMIT, later)
    tick(later)
    send_reminders(now=later)
    send_pending(now=later)
    assert kinds(mailbox) == ["FAILING", "STILL"]
    assert Notification.objects.filter(alert=alert).count() == 2
