"""A poll whose process died is closed as failed, with a reason, once it is overdue (and not before).

A poll writes its PollRun when it starts and completes it when it ends; a worker process killed
mid-poll leaves the run open. Past CELERY_TASK_TIME_LIMIT plus a margin the periodic sweep (the
``close_abandoned_polls`` beat task) closes it as the failure it was, so it counts as one: for the
pages' freshness and for the blind alert. A frozen clock; the beat task is called in the foreground.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.alerting.blind import blind_reasons
from workers.fleet import tasks
from workers.fleet.poll_sweep import ABANDONED_MARGIN_SECONDS, ABANDONED_REASON
from workers.models import AutomationAccount, PollRun

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def account() -> AutomationAccount:
    return AutomationAccount.objects.create(name="aa-ops", subscription_id="sub", resource_group="rg", automation_account="aa-ops")


def started(account: AutomationAccount, at: datetime, kind: str = "groups") -> PollRun:
    """A run as workers.fleet.polling opens it when a poll starts (not ok, not finished)."""
    return PollRun.objects.create(account=account, kind=kind, scope="", started_at=at)


def sweep(time_machine, at: datetime) -> int:
    time_machine.move_to(at, tick=False)
    return tasks.close_abandoned_polls()


def test_an_abandoned_poll_is_closed_as_failed_after_the_deadline_and_not_before(account, settings, time_machine):
    run = started(account, T0)
    deadline = T0 + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + ABANDONED_MARGIN_SECONDS)
    assert sweep(time_machine, deadline) == 0
    run.refresh_from_db()
    assert (run.finished_at, run.ok, run.error) == (None, False, "")
    after = deadline + timedelta(seconds=1)
    assert sweep(time_machine, after) == 1
    run.refresh_from_db()
    assert (run.finished_at, run.ok) == (after, False)
    assert run.error.startswith(ABANDONED_REASON)
    assert sweep(time_machine, after + timedelta(minutes=1)) == 0  # safe to run twice


def test_a_poll_still_within_its_time_limit_is_left_alone(account, settings, time_machine):
    old = started(account, T0 - timedelta(hours=1))
    running = started(account, T0, kind="jobs")
    assert sweep(time_machine, T0 + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)) == 1
    old.refresh_from_db()
    running.refresh_from_db()
    assert old.finished_at is not None and running.finished_at is None


def test_a_closed_abandoned_groups_poll_counts_as_the_failure_it_was(account, time_machine):
    PollRun.objects.create(account=account, kind="groups", started_at=T0, finished_at=T0, ok=True)
    started(account, T0 + timedelta(seconds=30))
    later = T0 + timedelta(minutes=5)
    assert sweep(time_machine, later) == 1
    (reason,) = blind_reasons(account, now=later)
    assert ABANDONED_REASON in reason.text and reason.since == later


def test_the_sweep_runs_on_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["close-abandoned-polls"]
    assert entry["task"] == tasks.close_abandoned_polls.name
    assert entry["options"]["expires"] == entry["schedule"]
