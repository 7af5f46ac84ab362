"""The worker-poll fan-out order: least recently polled first, so no group starves when the
Celery workers cannot poll the whole fleet within one interval (the tail of the queue expires)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.web import build_fleet, make_account
from workers.fleet.polling import groups_to_poll
from workers.models import PollKind, PollRun

pytestmark = pytest.mark.django_db


def _polled(fleet, name: str, *, at) -> None:
    PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=name, ok=True, started_at=at,
                           finished_at=at + timedelta(seconds=1))


def test_it_sends_the_least_recently_polled_groups_first(now):
    fleet = build_fleet(groups=4, workers_per_group=1, now=now, jobs_per_group=0, group_names=["a", "b", "c", "d"])
    by_name = {g.name: g.pk for g in fleet.groups}
    _polled(fleet, "a", at=now - timedelta(seconds=5))
    _polled(fleet, "b", at=now - timedelta(seconds=40))
    _polled(fleet, "b", at=now - timedelta(seconds=70))
    _polled(fleet, "d", at=now - timedelta(hours=2))  # outside the stale window: as good as never
    assert groups_to_poll(fleet.account.pk, now=now) == [by_name["c"], by_name["d"], by_name["b"], by_name["a"]]


def test_a_group_dropped_by_one_cycle_leads_the_next(now):
    fleet = build_fleet(groups=3, workers_per_group=1, now=now, jobs_per_group=0, group_names=["a", "b", "c"])
    first = groups_to_poll(fleet.account.pk, now=now)
    # This cycle polled only the first two before the rest of the queue expired.
    for pk in first[:2]:
        _polled(fleet, next(g.name for g in fleet.groups if g.pk == pk), at=now + timedelta(seconds=1))
    assert groups_to_poll(fleet.account.pk, now=now + timedelta(seconds=30))[0] == first[2]


def test_it_leaves_out_removed_groups_and_other_accounts(now):
    fleet = build_fleet(groups=2, workers_per_group=1, now=now, jobs_per_group=0, group_names=["kept", "gone"])
    other = build_fleet(groups=1, workers_per_group=1, now=now, jobs_per_group=0, group_names=["elsewhere"], account=make_account("other"))
    fleet.groups[1].removed_at = now
    fleet.groups[1].save()
    assert groups_to_poll(fleet.account.pk, now=now) == [fleet.groups[0].pk]
    assert groups_to_poll(other.account.pk, now=now) == [other.groups[0].pk]
