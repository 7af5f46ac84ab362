"""Issue 12, the Redis gap: after a 63 s broker outage the beat's refresh ran before the polls
landed and turned 196 healthy workers late. A shared test Redis cannot be stopped, so the effect is
reproduced exactly: the polls of that minute are missing, then the beat's ``refresh_statuses`` task
runs first on a real Celery worker over Redis (``tests.fixtures.celery``), then the polls land.

The clock is frozen (time_machine) and moved in step with the emulator's manual clock; the worker
thread reads the same patched clock, so the tasks judge at exactly the moments the test sets.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.celery import DEADLINE_SECONDS, wait_for
from workers.fleet import polling, tasks
from workers.fleet.accounts import add_account_from_connection_file
from workers.models import HybridWorker, PollRun, StatusChange


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_beat_refresh_after_a_broker_gap_changes_no_status_and_the_polls_keep_workers_online(
    celery_worker, make_emulator, time_machine
):
    emu = make_emulator(seed=5, groups=3, workers=6, history_days=1 / 24, page_size=4, scenarios=False)
    time_machine.move_to(emu.clock.now(), tick=False)
    account = add_account_from_connection_file(emu.connection_file)[0]
    tasks.poll_all_workers.delay()  # fan-out, one poll per group, each followed by its group's refresh
    wait_for(lambda: HybridWorker.objects.filter(status="online").count() == 6, "6 workers online")
    assert all(o.ok for o in polling.poll_logs(account.pk))  # heartbeats too, at the same moment

    # The last polls ran at T0. Redis goes away just before the next cycle (T0 + 30 s) for 63 s:
    # nothing is polled until T0 + 93 s, and the beat's refresh is the first task to run then.
    polls = PollRun.objects.count()
    emu.clock.advance(93)
    time_machine.shift(timedelta(seconds=93))
    changes = tasks.refresh_statuses.apply_async(ignore_result=False).get(timeout=DEADLINE_SECONDS)
    assert changes == 0
    assert PollRun.objects.count() == polls  # the refresh judged without any new poll
    assert set(HybridWorker.objects.values_list("status", flat=True)) == {"online"}
    assert all("not re-checked" in r for r in HybridWorker.objects.values_list("status_reason", flat=True))

    # Then the polls land, showing every worker alive: still no change, and the note is gone.
    tasks.poll_all_workers.delay()
    wait_for(
        lambda: not HybridWorker.objects.filter(status_reason__contains="our last worker poll").exists(),
        "the fresh worker polls and their refreshes",
    )
    assert PollRun.objects.filter(kind="workers", ok=True).count() == 6
    assert StatusChange.objects.exclude(old_status="unknown").count() == 0
    assert set(HybridWorker.objects.values_list("status", flat=True)) == {"online"}
