"""When we last actually looked at each group's liveness signals: the status refresh judges by it.

A stored ``last_seen_at`` or ``last_heartbeat_at`` only says what our last successful poll saw. When
our own polling is behind (the Celery worker or the broker was down, a poll failed), judging that old
answer against the clock turned healthy workers late or offline until the next poll landed: after a
3.5-minute Celery outage, 196 false changes, reverted seconds later. So each signal is judged as of
our last look (``workers.rules.signals.judge_signal``), which is, per group:

- Automation ``lastSeenDateTime``: the start of the latest *finished, successful* worker poll of the
  group (``PollRun`` kind=workers, scope=group name, ok);
- Log Analytics heartbeat: the start of the latest finished, successful heartbeat poll of its account;
- HybridWorkerPing: the start of the latest finished, successful ping poll of its account.

The start, not the end: what the listing shows is at least as new as the moment the poll began. A poll
still in flight, or one that failed, is not a look (``poll_evidence.finished_polls``). One query for
any number of groups and workers: the live groups, each with three ``LIMIT 1`` subqueries that walk the
``pollrun_ok_scope`` index (account, kind, scope, started_at, ok runs only), never an aggregate over
every stored poll.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, Subquery

from workers.fleet.selectors.poll_evidence import finished_polls
from workers.models import PollKind, WorkerGroup


@dataclass(frozen=True)
class LastLooked:
    """When our latest finished, successful polls of a group's two signals started (None: never)."""

    automation: datetime | None
    heartbeat: datetime | None
    ping: datetime | None = None


def last_looked(*, account_id: int | None = None, group_id: int | None = None) -> dict[int, LastLooked]:
    """Group id -> ``LastLooked`` for every group (of one account, or one group). One query.

    A group missing from the answer, or with None, was never polled successfully: its workers are
    judged at ``now`` as before (nothing better is known).
    """
    groups = WorkerGroup.objects.all()
    if account_id is not None:
        groups = groups.filter(account_id=account_id)
    if group_id is not None:
        groups = groups.filter(pk=group_id)
    worker_poll = finished_polls(ok=True, account_id=OuterRef("account_id"), kind=PollKind.WORKERS, scope=OuterRef("name"))
    heartbeat_poll = finished_polls(ok=True, account_id=OuterRef("account_id"), kind=PollKind.HEARTBEAT, scope="")
    ping_poll = finished_polls(ok=True, account_id=OuterRef("account_id"), kind=PollKind.PING, scope="")
    rows = groups.annotate(
        automation_at=Subquery(worker_poll.order_by("-started_at").values("started_at")[:1]),
        heartbeat_at=Subquery(heartbeat_poll.order_by("-started_at").values("started_at")[:1]),
        ping_at=Subquery(ping_poll.order_by("-started_at").values("started_at")[:1]),
    ).values_list("pk", "automation_at", "heartbeat_at", "ping_at")
    return {pk: LastLooked(automation, heartbeat, ping) for pk, automation, heartbeat, ping in rows.order_by()}
