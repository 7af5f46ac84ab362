"""Apply the health rules to stored workers: current status, its reason, the ``alert_after`` deadline,
and one ``StatusChange`` row (the alert outbox) per real change.

A status changes only through a conditional UPDATE (``... WHERE id = v.id AND status = v.old``,
batched, ``RETURNING id``); a ``StatusChange`` row is written in the same transaction for exactly
the rows that UPDATE matched.
Two refreshes running at once (two beats, a retried task) therefore write each change exactly once:
the loser's UPDATE matches nothing. Called by the ``refresh_statuses`` task (beat, and after every
worker/log poll), by ``manage.py poll --once`` and by the alerting tests.

A worker is judged only on data we actually fetched: each signal as of the start of our latest
finished, successful poll of it (``workers.fleet.selectors.last_looked``, one query per refresh). When
our own polling is behind (Celery worker or broker down, a failed poll), a worker does not turn late
or offline until a fresh poll of its group has come in, and its reason says the signal was not
re-checked: the gap is recorded as ours, not the fleet's. A group never polled is judged at ``now``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from workers.fleet.locking import BATCH, lock_workers, update_from_values, update_workers_in_pk_order
from workers.fleet.selectors.last_looked import LastLooked, last_looked
from workers.models import HybridWorker, StatusChange
from workers.rules.health import worker_status
from workers.rules.signals import Thresholds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshResult:
    workers: int  # workers judged
    changes: int  # StatusChange rows written by this call
    updated: int  # rows whose reason/deadline moved without a status change


def refresh_statuses(
    account_id: int | None = None,
    *,
    now: datetime | None = None,
    group_id: int | None = None,
    thresholds: Thresholds | None = None,
) -> RefreshResult:
    """Judge every current (not removed) worker, of one account (or one group) or all, at ``now``,
    each signal as of our last successful poll of it (never later than ``now``).

    Safe to run twice or concurrently: a status change is claimed by a conditional UPDATE, so only
    one caller writes its ``StatusChange``; the other updates only reason/deadline columns.
    """
    now = now or timezone.now()
    base = thresholds or Thresholds.from_settings()
    looked = last_looked(account_id=account_id, group_id=group_id)
    qs = HybridWorker.objects.filter(removed_at__isnull=True)
    if account_id is not None:
        qs = qs.filter(group__account_id=account_id)
    if group_id is not None:
        qs = qs.filter(group_id=group_id)
    rows = qs.values_list(
        "pk", "status", "status_reason", "alert_after", "last_seen_at", "last_heartbeat_at", "registered_at",
        "group__grace_seconds", "group_id", "last_ping_at",
    )
    changes: dict[int, dict[str, object]] = {}
    touch: dict[int, dict[str, object]] = {}
    judged = 0
    never = LastLooked(None, None)
    for pk, old, old_reason, old_deadline, last_seen_at, last_heartbeat_at, registered_at, grace, group, last_ping_at in rows.iterator(
        chunk_size=2000
    ):
        judged += 1
        seen = looked.get(group, never)
        verdict = worker_status(
            now=now,
            last_seen_at=last_seen_at,
            last_heartbeat_at=last_heartbeat_at,
            registered_at=registered_at,
            thresholds=base.with_grace(grace),
            automation_checked_at=seen.automation,
            heartbeat_checked_at=seen.heartbeat,
            last_ping_at=last_ping_at,
            ping_checked_at=seen.ping,
        )
        if verdict.status != old:
            changes[pk] = {
                "status": verdict.status,
                "status_reason": verdict.reason,
                "status_changed_at": now,
                "alert_after": verdict.alert_after,
                "expected_status": old,
            }
        # Same status: keep the stored deadline current (it moves with every fresh signal) and the
        # reason when the set of stale signals changes; ages inside the reason are not worth a write.
        elif old_deadline != verdict.alert_after or _stale_part(old_reason) != _stale_part(verdict.reason):
            touch[pk] = {"alert_after": verdict.alert_after, "status_reason": verdict.reason}
    changed = change_statuses(changes, now=now)
    updated = update_workers_in_pk_order(touch, ["alert_after", "status_reason"])
    return RefreshResult(workers=judged, changes=changed, updated=updated)


def _stale_part(reason: str) -> tuple[tuple[bool, bool], ...]:
    """Which signals the reason calls stale, and which not re-checked (our polling is behind),
    ignoring the ages (so a new age alone causes no write, but the start or end of a gap does)."""
    return tuple(("fresh" not in p, "not re-checked" in p) for p in reason.split("; "))


def change_statuses(changes: dict[int, dict[str, object]], *, now: datetime) -> int:
    """Apply status changes through a conditional UPDATE and log each one that matched, exactly once.

    ``changes``: pk -> new ``status``, ``status_reason``, ``status_changed_at``, ``alert_after`` and
    the ``expected_status`` the caller read. Per batch, in one transaction: lock the rows (pk
    order), ``UPDATE ... WHERE id = v.id AND status = v.expected_status RETURNING id``, then one
    ``StatusChange`` for exactly the returned rows. A concurrent caller that read the same old
    status finds it changed (its UPDATE matches nothing for that row), so it logs nothing.
    Returns the number of changes written.
    """
    written = 0
    pks = sorted(changes)
    fields = ["status", "status_reason", "status_changed_at", "alert_after"]
    for start in range(0, len(pks), BATCH):
        batch = {pk: changes[pk] for pk in pks[start : start + BATCH]}
        with transaction.atomic():
            lock_workers(list(batch))
            matched = update_from_values(batch, fields, expect={"status": "expected_status"}, returning=True)
            StatusChange.objects.bulk_create(
                [
                    StatusChange(
                        worker_id=pk,
                        old_status=str(batch[pk]["expected_status"]),
                        new_status=str(batch[pk]["status"]),
                        reason=str(batch[pk]["status_reason"])[:300],
                        created_at=now,
                    )
                    for pk in sorted(matched)
                ]
            )
        lost = len(batch) - len(matched)
        if lost:
            log.info("%d workers changed status under a concurrent refresh; their changes were skipped", lost)
        written += len(matched)
    return written
