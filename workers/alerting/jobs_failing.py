"""Jobs failing: one ``jobs_failing`` alert per group whose recent jobs name a cause.

Two causes show only in the jobs, never in the liveness signals (the workers keep polling, so no
status change reaches the outbox): the machine's managed identity missing (jobs fail to
authenticate) and the Hybrid Worker job limit (jobs suspended). Azure does not say which member ran
a job, so the evidence belongs to the group (``workers.rules.diagnosis.job_evidence``, the rule the
worker page reads over the same hour), and so does the alert: one email per group, never one per
worker. Its email names the cause with the fix for each member's platform (V2 Windows/Linux, V1),
the same text the worker page shows (``workers.alerting.jobs_content``).

- **Opens** when the group's jobs of the last ``JOB_EVIDENCE_WINDOW`` carry at least
  ``JOBS_FAILING_MIN_JOBS`` such failures (one failed job is no page), the newest within
  ``JOBS_FAILING_CLEAR_MINUTES``, a member can take jobs (a group that is down has its down alert),
  and the account is not blind. Evidence that an earlier alert of the group already resolved on
  does not reopen it: only a failure after that.
- **Holds** as ``maintenance`` when every live member is under a window (``release_maintenance``
  sends it if the failures outlast the window); reminders and acknowledgement as for a down alert.
- **Resolves** (RESTORED email, only if the opening one went) when no failure for
  ``JOBS_FAILING_CLEAR_MINUTES`` and a job of the group completed after the last one, or when the
  evidence window holds no failure at all any more, or the group was removed.

Runs inside ``workers.alerting.outbox.process_outbox``, under its lock: two calls open it once.
Bounded: one query over the last hour's failed and suspended jobs (the ``job_status_created`` index).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max

from workers.alerting.incidents import OFFLINE, OutboxResult, resolve
from workers.alerting.maintenance import covered_worker_ids
from workers.models import Alert, AlertKind, AlertMember, AlertState, HybridWorker, Job, WorkerGroup
from workers.rules.diagnosis import JOB_EVIDENCE_WINDOW, JobEvidence, job_evidence
from workers.rules.health import is_v1_worker

# At least this many failures of one cause-naming kind in the evidence window open the alert.
JOBS_FAILING_MIN_JOBS = 2
# No failure for this long (and a job completed since) resolves it; a newer failure keeps it open.
JOBS_FAILING_CLEAR_MINUTES = 15
FAILED_STATUSES = ("Failed", "Suspended")


@dataclass
class _JobRow:
    status: str
    exception: str
    created_at: datetime


@dataclass(frozen=True)
class GroupEvidence:
    """A group's job evidence over the window, and when its newest counted job failed."""

    group_id: int
    evidence: JobEvidence
    first_at: datetime
    last_at: datetime

    @property
    def total(self) -> int:
        return self.evidence.auth_failures + self.evidence.job_limit


def group_evidence(*, now: datetime) -> dict[int, GroupEvidence]:
    """Group id -> its evidence, for every group with at least one cause-naming job in the window."""
    rows = (
        Job.objects.filter(
            created_at__gte=now - JOB_EVIDENCE_WINDOW, created_at__lte=now, status__in=FAILED_STATUSES, group__isnull=False
        )
        .exclude(exception="")
        .values_list("group_id", "status", "exception", "created_at", "ended_at", "last_modified_at")
    )
    per_group: dict[int, list[tuple[_JobRow, datetime]]] = {}
    for group_id, status, exception, created_at, ended_at, modified_at in rows.iterator(chunk_size=2000):
        row = _JobRow(status, exception, created_at)
        one = job_evidence([row], now=now)  # the one rule: does this job name a cause?
        if one.auth_failures or one.job_limit:
            # When it failed: its end (or the last change we saw), else its creation.
            failed_at = min(ended_at or modified_at or created_at, now)
            per_group.setdefault(group_id, []).append((row, failed_at))
    return {
        group_id: GroupEvidence(
            group_id, job_evidence([r for r, _ in found], now=now), min(at for _, at in found), max(at for _, at in found)
        )
        for group_id, found in per_group.items()
    }


def causes_text(evidence: JobEvidence) -> str:
    """"3 jobs failed to authenticate with the managed identity; 2 suspended at the job limit"."""
    parts = []
    if evidence.auth_failures:
        parts.append(f"{evidence.auth_failures} job(s) failed with a managed-identity authentication error")
    if evidence.job_limit:
        parts.append(f"{evidence.job_limit} job(s) suspended at the Hybrid Worker job limit")
    return "; ".join(parts) + f" in the last {int(JOB_EVIDENCE_WINDOW.total_seconds() // 60)} min"


def _members(group_id: int) -> list[HybridWorker]:
    return list(HybridWorker.objects.filter(group_id=group_id, removed_at__isnull=True).order_by("name"))


def _names_a_cause(found: GroupEvidence, members: list[HybridWorker]) -> bool:
    """The page names a cause for some member (the job limit for any; the managed identity only for an
    extension-based, V2, member), on at least JOBS_FAILING_MIN_JOBS failures."""
    counted = found.evidence.job_limit
    if any(not is_v1_worker(w.worker_type) for w in members):
        counted += found.evidence.auth_failures
    return counted >= JOBS_FAILING_MIN_JOBS


def update_jobs_failing(*, now: datetime, blind_accounts: set[int], result: OutboxResult) -> None:
    """Open the alert of each group whose jobs newly name a cause; resolve the ones that cleared."""
    evidence = group_evidence(now=now)
    clear = timedelta(minutes=JOBS_FAILING_CLEAR_MINUTES)
    open_alerts = {
        a.group_id: a
        for a in Alert.objects.filter(kind=AlertKind.JOBS_FAILING, state=AlertState.OPEN).select_related("group__account")
    }
    for alert in open_alerts.values():
        group = alert.group
        if group is not None and group.account_id in blind_accounts:
            continue  # no new data: nothing to decide
        found = evidence.get(group.pk) if group is not None else None
        if group is None or group.removed_at is not None or found is None or (
            now - found.last_at >= clear and _completed_since(group.pk, found.last_at, now=now)
        ):
            AlertMember.objects.filter(alert=alert, recovered_at__isnull=True).update(recovered_at=now)
            alert.resolved_at = now
            resolve(alert, now=now, result=result)
        elif alert.detail != causes_text(found.evidence):
            Alert.objects.filter(pk=alert.pk).update(detail=causes_text(found.evidence))
    last_resolved = _last_resolved(set(evidence) - set(open_alerts))
    groups = WorkerGroup.objects.filter(
        pk__in=set(evidence) - set(open_alerts), removed_at__isnull=True, account__enabled=True
    ).exclude(account_id__in=blind_accounts)
    for group in groups:
        found = evidence[group.pk]
        if now - found.last_at >= clear:
            continue
        resolved_at = last_resolved.get(group.pk)
        if resolved_at is not None and found.last_at <= resolved_at:
            continue  # the failures an earlier alert already reported and saw clear
        members = _members(group.pk)
        if not _names_a_cause(found, members) or all(w.status == OFFLINE for w in members):
            continue
        _open(group, members, found, now=now, result=result)


def _open(group: WorkerGroup, members: list[HybridWorker], found: GroupEvidence, *, now: datetime, result: OutboxResult) -> None:
    ids = [w.pk for w in members]
    covered = covered_worker_ids(ids, now=now)
    titles = []
    if found.evidence.auth_failures:
        titles.append("managed identity missing")
    if found.evidence.job_limit:
        titles.append("job limit exceeded")
    alert = Alert.objects.create(
        kind=AlertKind.JOBS_FAILING,
        account_id=group.account_id,
        group=group,
        title=f"Jobs of {group.name} failing: {', '.join(titles)}",
        detail=causes_text(found.evidence),
        opened_at=found.first_at,  # failing since the first failure of the window
        notify_at=now,
        suppressed="maintenance" if ids and set(ids) <= covered else "",
    )
    AlertMember.objects.bulk_create(
        [AlertMember(alert=alert, worker=w, down_at=alert.opened_at, reason=f"jobs failing: {', '.join(titles)}") for w in members]
    )
    result.opened.append(alert.pk)


def _completed_since(group_id: int, since: datetime, *, now: datetime) -> bool:
    """A job of the group completed after ``since``: jobs run again."""
    return Job.objects.filter(
        group_id=group_id, status="Completed", created_at__gte=now - JOB_EVIDENCE_WINDOW, ended_at__gt=since, ended_at__lte=now
    ).exists()


def _last_resolved(group_ids: set[int]) -> dict[int, datetime]:
    """Group id -> when its latest jobs-failing alert resolved."""
    if not group_ids:
        return {}
    rows = (
        Alert.objects.filter(kind=AlertKind.JOBS_FAILING, state=AlertState.RESOLVED, group_id__in=group_ids, resolved_at__isnull=False)
        .values("group_id").annotate(at=Max("resolved_at")).order_by()
    )
    return {r["group_id"]: r["at"] for r in rows}
