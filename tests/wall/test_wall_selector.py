"""workers.wall.selectors.wall_snapshot: tiles worst first, filters, totals, freshness, query count.

Every test passes ``now`` explicitly (the selector reads no clock)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.fleet import add_jobs, build_fleet, record_polls
from workers.models import Alert, AlertState, AutomationAccount, Job, WorkerStatus
from workers.wall.selectors import WallFilters, wall_snapshot

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
ONLINE, LATE, OFFLINE = WorkerStatus.ONLINE.value, WorkerStatus.LATE.value, WorkerStatus.OFFLINE.value

pytestmark = pytest.mark.django_db


def _mixed(group_index: int, worker_index: int) -> str:
    """Group 0 healthy, group 1 degraded (one offline), group 2 down (all offline), group 3 two offline of three."""
    if group_index == 2:
        return OFFLINE
    if group_index == 1 and worker_index == 0:
        return OFFLINE
    if group_index == 3 and worker_index < 2:
        return OFFLINE
    return ONLINE


def test_it_orders_tiles_worst_first():
    build_fleet(now=NOW, groups=4, workers_per_group=3, status=_mixed, group_names=["a-ok", "b-one-off", "c-down", "d-two-off"])

    snapshot = wall_snapshot(now=NOW)

    assert [t.group.name for t in snapshot.tiles] == ["c-down", "d-two-off", "b-one-off", "a-ok"]


def test_it_gives_each_tile_its_health_and_online_over_total():
    build_fleet(now=NOW, groups=4, workers_per_group=3, status=_mixed, group_names=["a-ok", "b-one-off", "c-down", "d-two-off"])

    tiles = {t.group.name: t for t in wall_snapshot(now=NOW).tiles}

    assert (tiles["c-down"].group.health, tiles["c-down"].group.members.online, tiles["c-down"].group.members.total) == ("down", 0, 3)
    assert (tiles["d-two-off"].group.health, tiles["d-two-off"].group.members.online) == ("degraded", 1)
    assert (tiles["a-ok"].group.health, tiles["a-ok"].group.members.online) == ("healthy", 3)


def test_it_calls_a_group_without_members_empty():
    build_fleet(now=NOW, groups=1, workers_per_group=0, group_names=["nobody-home"])

    (tile,) = wall_snapshot(now=NOW).tiles

    assert (tile.group.health, tile.group.members.total) == ("empty", 0)


def test_it_ignores_removed_workers_and_groups():
    fleet = build_fleet(now=NOW, groups=2, workers_per_group=2, group_names=["kept", "gone"])
    fleet.groups[1].removed_at = NOW
    fleet.groups[1].save()
    fleet.workers[0].removed_at = NOW
    fleet.workers[0].save()

    tiles = wall_snapshot(now=NOW).tiles

    assert [(t.group.name, t.group.members.total) for t in tiles] == [("kept", 1)]


def test_it_filters_by_group_names_case_insensitively():
    build_fleet(now=NOW, groups=3, group_names=["Alpha", "beta", "gamma"])

    snapshot = wall_snapshot(now=NOW, filters=WallFilters(groups=("alpha", "GAMMA")))

    assert sorted(t.group.name for t in snapshot.tiles) == ["Alpha", "gamma"]


def test_it_names_the_requested_groups_that_do_not_exist():
    build_fleet(now=NOW, groups=1, group_names=["alpha"])

    snapshot = wall_snapshot(now=NOW, filters=WallFilters(groups=("alpha", "nope")))

    assert snapshot.unmatched_groups == ("nope",)


def test_it_filters_by_account():
    build_fleet(now=NOW, groups=2, account_name="east")
    build_fleet(now=NOW, groups=3, account_name="west")

    snapshot = wall_snapshot(now=NOW, filters=WallFilters(account="WEST"))

    assert {t.group.account for t in snapshot.tiles} == {"west"} and len(snapshot.tiles) == 3


def test_it_says_when_the_filtered_account_does_not_exist():
    build_fleet(now=NOW, groups=2, account_name="east")

    snapshot = wall_snapshot(now=NOW, filters=WallFilters(account="north"))

    assert (snapshot.tiles, snapshot.account_found) == ([], False)


def test_it_sums_fleet_totals_over_the_groups_on_screen():
    build_fleet(now=NOW, groups=4, workers_per_group=3, status=_mixed, group_names=["a-ok", "b-one-off", "c-down", "d-two-off"])

    totals = wall_snapshot(now=NOW).totals

    assert (totals.groups, totals.workers_total, totals.workers_online, totals.workers_offline) == (4, 12, 6, 6)
    assert totals.groups_by_health == {"down": 1, "degraded": 2, "healthy": 1, "empty": 0}


def test_it_counts_jobs_queued_now_per_group_and_in_total():
    fleet = build_fleet(now=NOW, groups=2, group_names=["busy", "idle"])
    add_jobs(fleet.groups[0], now=NOW, queue_seconds=[None, None, 5.0])

    snapshot = wall_snapshot(now=NOW)

    assert {t.group.name: t.queued for t in snapshot.tiles} == {"busy": 2, "idle": 0}
    assert snapshot.totals.jobs_queued == 2


def test_it_does_not_count_finished_jobs_as_queued():
    fleet = build_fleet(now=NOW, groups=1)
    (job,) = add_jobs(fleet.groups[0], now=NOW, queue_seconds=[None])
    Job.objects.filter(pk=job.pk).update(status="Stopped", ended_at=NOW)

    assert wall_snapshot(now=NOW).totals.jobs_queued == 0


def test_it_computes_the_queue_delay_p95_over_the_last_24_hours():
    fleet = build_fleet(now=NOW, groups=1)
    add_jobs(fleet.groups[0], now=NOW, queue_seconds=[float(s) for s in range(1, 101)])
    add_jobs(fleet.groups[0], now=NOW - timedelta(hours=30), queue_seconds=[9999.0])

    totals = wall_snapshot(now=NOW).totals

    assert totals.queue_p95_seconds_24h == pytest.approx(95.05)
    assert totals.queue_jobs_24h == 100


def test_it_reports_no_p95_without_started_jobs():
    build_fleet(now=NOW, groups=1)

    assert wall_snapshot(now=NOW).totals.queue_p95_seconds_24h is None


def test_it_counts_open_alerts_per_group_and_for_the_fleet():
    fleet = build_fleet(now=NOW, groups=2, group_names=["g1", "g2"])
    Alert.objects.create(kind="worker_down", group=fleet.groups[0], account=fleet.account, opened_at=NOW)
    Alert.objects.create(kind="worker_down", group=fleet.groups[0], account=fleet.account, opened_at=NOW, state=AlertState.RESOLVED)
    Alert.objects.create(kind="blind", account=fleet.account, opened_at=NOW)

    snapshot = wall_snapshot(now=NOW)

    assert {t.group.name: t.open_alerts for t in snapshot.tiles} == {"g1": 1, "g2": 0}
    assert snapshot.totals.open_alerts == 2


def test_it_is_fresh_after_recent_successful_polls():
    build_fleet(now=NOW, groups=1, poll_age_seconds=10)

    fresh = wall_snapshot(now=NOW).freshness

    assert (fresh.stale, fresh.age_seconds) == (False, 10)
    assert fresh.last_ok_at == NOW - timedelta(seconds=10)


def test_it_says_how_long_the_data_stays_fresh():
    # Automation polls every 30 s and goes stale after 3 intervals: 90 s - 10 s = 80 s left.
    build_fleet(now=NOW, groups=1, poll_age_seconds=10)

    assert wall_snapshot(now=NOW).freshness.fresh_for_seconds == pytest.approx(80)


def test_it_is_stale_when_the_latest_poll_failed():
    fleet = build_fleet(now=NOW, groups=1, poll_age_seconds=40)
    record_polls(fleet.account, at=NOW - timedelta(seconds=5), ok=False, error="503 Service Unavailable")

    fresh = wall_snapshot(now=NOW).freshness

    assert fresh.stale and fresh.fresh_for_seconds is None
    assert any("503 Service Unavailable" in r for r in fresh.reasons)


def test_it_is_stale_when_polls_are_overdue():
    build_fleet(now=NOW, groups=1, poll_age_seconds=600)

    fresh = wall_snapshot(now=NOW).freshness

    assert fresh.stale and fresh.last_ok_at == NOW - timedelta(seconds=600)


def test_it_is_stale_before_the_first_poll():
    build_fleet(now=NOW, groups=1, polled=False)

    fresh = wall_snapshot(now=NOW).freshness

    assert (fresh.stale, fresh.ever_polled, fresh.last_ok_at) == (True, False, None)


def test_it_describes_tile_details_with_units():
    fleet = build_fleet(now=NOW, groups=1, workers_per_group=1, status=lambda g, w: OFFLINE, group_names=["solo"])
    add_jobs(fleet.groups[0], now=NOW, queue_seconds=[None, None])

    (tile,) = wall_snapshot(now=NOW).tiles

    assert tile.detail == "1 offline · 2 jobs queued · 1 member: no HA"


@pytest.mark.parametrize("groups", [10, 200])
def test_it_costs_the_same_number_of_queries_for_any_fleet_size(groups, django_assert_num_queries):
    fleet = build_fleet(now=NOW, groups=groups, workers_per_group=2)
    add_jobs(fleet.groups[0], now=NOW, queue_seconds=[1.0, None])

    # First snapshot after a jobs poll: groups, job data version, queued, p95, alerts, the groups'
    # recent worker polls, freshness.
    with django_assert_num_queries(7):
        snapshot = wall_snapshot(now=NOW)
    # Every later refresh until the next jobs poll shares the queued counts and the p95.
    with django_assert_num_queries(5):
        again = wall_snapshot(now=NOW + timedelta(seconds=15))

    assert len(snapshot.tiles) == groups
    assert again.totals == snapshot.totals


def test_it_shares_the_job_figures_until_the_next_jobs_poll():
    fleet = build_fleet(now=NOW, groups=2, workers_per_group=2)
    add_jobs(fleet.groups[0], now=NOW, queue_seconds=[1.0])
    first = wall_snapshot(now=NOW)
    add_jobs(fleet.groups[0], now=NOW, queue_seconds=[50.0, 60.0])  # rows written without a poll
    assert wall_snapshot(now=NOW + timedelta(seconds=15)).totals.queue_jobs_24h == first.totals.queue_jobs_24h == 1

    AutomationAccount.objects.update(jobs_watermark=NOW)  # what a successful jobs poll does
    assert wall_snapshot(now=NOW + timedelta(seconds=20)).totals.queue_jobs_24h == 3


def test_it_greys_a_tile_whose_own_worker_poll_fails_and_sorts_it_with_the_degraded_ones():
    from workers.models import PollKind, PollRun, WorkerGroup

    def status(group_index: int, worker_index: int) -> str:
        return OFFLINE if group_index == 2 or (group_index == 1 and worker_index == 0) else ONLINE

    fleet = build_fleet(now=NOW, groups=5, workers_per_group=3, status=status, group_names=["a-ok", "b-one-off", "c-down", "d-ok", "e-ok"])
    WorkerGroup.objects.update(first_seen_at=NOW - timedelta(days=1))
    for group in fleet.groups:
        ok = group.name != "e-ok"
        PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=group.name, ok=ok, error="" if ok else "<b>403</b>",
                               started_at=NOW - timedelta(seconds=6), finished_at=NOW - timedelta(seconds=5))

    snapshot = wall_snapshot(now=NOW)
    tiles = {t.group.name: t for t in snapshot.tiles}

    assert [t.group.name for t in snapshot.tiles] == ["c-down", "b-one-off", "e-ok", "a-ok", "d-ok"]
    assert (tiles["e-ok"].group.poll_problem, tiles["e-ok"].label) == ("worker poll failing: <b>403</b>", "NOT POLLED")
    assert tiles["e-ok"].detail.startswith("last known healthy")
    assert (tiles["a-ok"].group.poll_problem, tiles["a-ok"].label) == ("", "HEALTHY")
    assert snapshot.freshness.stale is False  # the other groups' polls are fine: only the tile is greyed


def test_it_orders_the_tiles_like_the_overview_orders_its_rows():
    from workers.fleet.selectors import fleet_overview

    build_fleet(now=NOW, groups=4, workers_per_group=3, status=_mixed, group_names=["a-ok", "b-one-off", "c-down", "d-two-off"])

    assert [t.group.id for t in wall_snapshot(now=NOW).tiles] == [g.id for g in fleet_overview(now=NOW).groups]
