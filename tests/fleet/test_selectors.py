"""Selectors: job statistics, freshness rules, ordering and what counts as live."""
from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from tests.fixtures.web import build_fleet, make_account, record_polls
from workers.fleet import selectors
from workers.models import AutomationAccount, HybridWorker, Job, PollKind, PollRun, WorkerGroup, WorkerStatus
from workers.rules.stats import percentile

pytestmark = pytest.mark.django_db


def _jobs(group: WorkerGroup, delays: list[float | None], *, now, status: str = "Completed") -> None:
    Job.objects.bulk_create([
        Job(account=group.account, job_id=str(uuid.uuid4()), runbook="r", status=status, group=group, run_on=group.name,
            created_at=now - timedelta(minutes=5), queue_seconds=d)
        for d in delays
    ])


def test_it_gives_the_same_p95_on_every_engine(now):
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, jobs_per_group=0)
    rng = random.Random(4)
    delays = [round(rng.expovariate(1 / 30), 3) for _ in range(257)]
    _jobs(fleet.groups[0], delays, now=now)
    stats = selectors.job_stats_by_group(since=now - timedelta(hours=1))
    assert stats[fleet.groups[0].pk].queue_p95_seconds == pytest.approx(percentile(delays, 95))


def test_it_leaves_jobs_without_a_start_out_of_the_p95_but_counts_them(now):
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, jobs_per_group=0)
    _jobs(fleet.groups[0], [5.0, 5.0], now=now)
    _jobs(fleet.groups[0], [None], now=now, status="New")
    stats = selectors.job_stats_by_group(since=now - timedelta(hours=1))[fleet.groups[0].pk]
    assert stats.queue_p95_seconds == 5.0
    assert stats.outcomes == {"completed": 2, "failed": 0, "stopped": 0, "suspended": 0, "other": 1}


def test_it_counts_only_jobs_inside_the_window(now):
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, jobs_per_group=0)
    _jobs(fleet.groups[0], [1.0], now=now - timedelta(hours=25))
    assert selectors.job_stats_by_group(since=now - timedelta(hours=24)) == {}


def test_it_sorts_down_then_degraded_then_by_offline_count(now):
    account = make_account()
    build_fleet(groups=1, workers_per_group=4, now=now, account=account, group_names=["few-offline"],
                statuses=[WorkerStatus.ONLINE, WorkerStatus.ONLINE, WorkerStatus.ONLINE, WorkerStatus.OFFLINE])
    build_fleet(groups=1, workers_per_group=4, now=now, account=account, group_names=["many-offline"],
                statuses=[WorkerStatus.ONLINE, WorkerStatus.OFFLINE])
    build_fleet(groups=1, workers_per_group=1, now=now, account=account, group_names=["all-down"], statuses=[WorkerStatus.OFFLINE])
    build_fleet(groups=1, workers_per_group=1, now=now, account=account, group_names=["fine"])
    names = [g.name for g in selectors.fleet_overview(now=now).groups]
    assert names == ["all-down", "many-offline", "few-offline", "fine"]


def test_it_shows_a_group_with_no_member_online_as_down_at_once(now):
    # Late members may still take jobs, but with none online the group is at risk: down, not degraded.
    build_fleet(groups=1, workers_per_group=1, now=now, statuses=[WorkerStatus.LATE])
    assert selectors.fleet_overview(now=now).groups[0].health == "down"


def test_it_reports_an_empty_group(now):
    account = make_account()
    WorkerGroup.objects.create(account=account, azure_id="/x/empty", name="empty")
    assert selectors.fleet_overview(now=now).groups[0].health == "empty"


def test_it_leaves_removed_groups_workers_and_disabled_accounts_out(now):
    fleet = build_fleet(groups=2, workers_per_group=2, now=now)
    WorkerGroup.objects.filter(pk=fleet.groups[0].pk).update(removed_at=now)
    HybridWorker.objects.filter(pk=fleet.workers[2].pk).update(removed_at=now)
    overview = selectors.fleet_overview(now=now)
    assert [(g.name, g.members.total) for g in overview.groups] == [(fleet.groups[1].name, 1)]
    AutomationAccount.objects.update(enabled=False)
    assert selectors.fleet_overview(now=now).groups == []


def test_it_totals_the_fleet(now):
    build_fleet(groups=3, workers_per_group=2, now=now, statuses=[WorkerStatus.ONLINE, WorkerStatus.OFFLINE])
    totals = selectors.fleet_overview(now=now).totals
    assert (totals.groups, totals.workers_total, totals.workers_online, totals.workers_offline) == (3, 6, 3, 3)
    assert totals.groups_degraded == 3 and totals.groups_down == 0


def test_it_flags_groups(now):
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, statuses=[WorkerStatus.NEVER])
    WorkerGroup.objects.update(group_type="System")
    HybridWorker.objects.update(worker_type="HybridV1")
    group = selectors.fleet_overview(now=now).groups[0]
    assert fleet.groups[0].pk == group.id
    assert group.flags == ["single_member", "system_group", "v1_worker", "never_reported"]


def test_it_reports_no_sources_without_accounts(now):
    freshness = selectors.data_freshness(now=now)
    assert freshness.accounts == 0 and freshness.sources == () and freshness.stale is False


def test_it_is_stale_and_unpolled_before_the_first_poll(now):
    make_account()
    freshness = selectors.data_freshness(now=now)
    assert freshness.ever_polled is False and freshness.stale is True
    assert freshness.age_seconds is None


def test_it_takes_the_stalest_account_per_source(now):
    record_polls(make_account("a"), at=now - timedelta(seconds=10))
    record_polls(make_account("b"), at=now - timedelta(seconds=50))
    freshness = selectors.data_freshness(now=now)
    assert {s.key: s.age_seconds for s in freshness.sources} == {"automation": 50, "jobs": 50, "log_analytics": 50}


def test_it_skips_log_analytics_for_accounts_without_a_workspace(now):
    record_polls(make_account("a", workspace=""), at=now - timedelta(seconds=10), kinds=[PollKind.WORKERS, PollKind.JOBS])
    freshness = selectors.data_freshness(now=now)
    assert [s.key for s in freshness.sources] == ["automation", "jobs"]
    assert freshness.stale is False


def test_it_is_stale_when_only_one_source_failed(now):
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=10))
    record_polls(account, at=now - timedelta(seconds=2), ok=False, error="LogsQueryError", kinds=[PollKind.HEARTBEAT])
    freshness = selectors.data_freshness(now=now)
    stale = {s.key: (s.stale, s.error) for s in freshness.sources}
    assert stale == {"automation": (False, ""), "jobs": (False, ""), "log_analytics": (True, "LogsQueryError")}


def test_it_recovers_when_a_later_poll_succeeds(now):
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=20), ok=False, error="boom")
    record_polls(account, at=now - timedelta(seconds=5))
    assert selectors.data_freshness(now=now).stale is False


def test_it_gives_freshness_per_account(now):
    a, b = make_account("a"), make_account("b")
    record_polls(a, at=now - timedelta(seconds=10))
    record_polls(b, at=now - timedelta(seconds=10), ok=False, error="403")
    fleet, per_account = selectors.freshness_by_account(now=now)
    assert per_account[a.pk].stale is False and per_account[b.pk].stale is True and fleet.stale is True


def test_it_pages_jobs_newest_first(now):
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, jobs_per_group=5)
    first = selectors.jobs_page(page=1, page_size=2)
    second = selectors.jobs_page(page=2, page_size=2)
    assert first.total == 5 and first.has_next and second.page == 2
    times = [j.created_at for j in first.jobs + second.jobs]
    assert times == sorted(times, reverse=True)
    assert fleet.groups[0].pk == first.jobs[0].group_id


def test_it_stops_counting_jobs_at_the_cap_and_still_pages(now, monkeypatch, django_assert_num_queries):
    build_fleet(groups=1, workers_per_group=1, now=now, jobs_per_group=7)
    monkeypatch.setattr(selectors.jobs, "JOBS_COUNT_CAP", 4)
    with django_assert_num_queries(2):
        first = selectors.jobs_page(page=1, page_size=3)
    assert (first.total, first.total_capped, first.has_next, len(first.jobs)) == (4, True, True, 3)
    third = selectors.jobs_page(page=3, page_size=3)  # past the cap: rows are still there
    assert (len(third.jobs), third.has_next) == (1, False)
    last_exact = selectors.jobs_page(page=1, page_size=10, since=now - timedelta(days=400))
    assert last_exact.total_capped is True
    monkeypatch.setattr(selectors.jobs, "JOBS_COUNT_CAP", 7)
    exact = selectors.jobs_page(page=3, page_size=3)
    assert (exact.total, exact.total_capped, exact.pages, exact.has_next) == (7, False, 3, False)


def test_it_ignores_a_poll_still_in_progress(now):
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=10))
    PollRun.objects.create(account=account, kind=PollKind.WORKERS, started_at=now - timedelta(seconds=1), ok=False)
    freshness = selectors.data_freshness(now=now)
    assert freshness.stale is False
    assert freshness.sources[0].age_seconds == 10


def test_it_judges_a_group_by_its_own_worker_poll(now):
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=10))
    PollRun.objects.bulk_create([
        PollRun(account=account, kind=PollKind.WORKERS, scope="g-broken", started_at=now - timedelta(seconds=9),
                finished_at=now - timedelta(seconds=8), ok=False, error="403 Forbidden"),
        PollRun(account=account, kind=PollKind.WORKERS, scope="g-fine", started_at=now - timedelta(seconds=5),
                finished_at=now - timedelta(seconds=4), ok=True),
    ])
    broken = selectors.data_freshness(now=now, group_name="g-broken")
    fine = selectors.data_freshness(now=now, group_name="g-fine")
    assert broken.sources[0].stale is True and broken.sources[0].error == "403 Forbidden"
    assert fine.sources[0].stale is False and fine.sources[0].age_seconds == 4


def _overview_jobs(now) -> int:
    return sum(sum(g.jobs_24h.values()) for g in selectors.fleet_overview(now=now).groups)


def test_it_serves_the_fleet_job_aggregate_from_cache_until_the_next_jobs_poll(now):
    account = make_account()
    group = WorkerGroup.objects.create(account=account, azure_id="/g/cache", name="g-cache", group_type="User")
    _jobs(group, [1.0], now=now)
    assert _overview_jobs(now) == 1
    _jobs(group, [2.0], now=now)  # written without a poll: the cached aggregate still stands
    assert _overview_jobs(now) == 1
    AutomationAccount.objects.filter(pk=account.pk).update(jobs_watermark=now)  # what a successful poll does
    assert _overview_jobs(now) == 2


def test_it_recomputes_the_fleet_job_aggregate_after_five_minutes(now):
    account = make_account()
    group = WorkerGroup.objects.create(account=account, azure_id="/g/cache5", name="g-cache5", group_type="User")
    _jobs(group, [1.0], now=now)
    assert _overview_jobs(now) == 1
    _jobs(group, [2.0], now=now)
    assert _overview_jobs(now + timedelta(minutes=5)) == 2


def test_it_recomputes_a_shared_aggregate_when_the_clock_is_earlier_than_the_stored_one(now):
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    assert selectors.per_jobs_poll("probe", compute, now=now, max_age_seconds=60) == 1
    assert selectors.per_jobs_poll("probe", compute, now=now + timedelta(seconds=59), max_age_seconds=60) == 1
    assert selectors.per_jobs_poll("probe", compute, now=now - timedelta(seconds=1), max_age_seconds=60) == 2
    # A different ``extra`` (what else the result depends on) is a different entry.
    assert selectors.per_jobs_poll("probe", compute, now=now, max_age_seconds=60, extra=("other",)) == 3


def _over_threshold_in_window(now) -> int:
    from workers.latency.selectors import timeout_counts

    return timeout_counts("24h", now=now)["over_threshold_in_window"]


def test_it_recounts_timeouts_after_a_jobs_poll_or_a_threshold_change(now):
    from workers.models import RunbookThreshold

    account = make_account()
    group = WorkerGroup.objects.create(account=account, azure_id="/g/to", name="g-to", group_type="User")
    _jobs(group, [5000.0], now=now)  # queued 83 min: over the default queue threshold
    assert _over_threshold_in_window(now) == 1
    _jobs(group, [6000.0], now=now)  # written without a poll: the shared count stands
    assert _over_threshold_in_window(now + timedelta(seconds=30)) == 1
    AutomationAccount.objects.filter(pk=account.pk).update(jobs_watermark=now)
    assert _over_threshold_in_window(now + timedelta(seconds=30)) == 2
    # A new threshold changes what "over" means: counted again at once.
    RunbookThreshold.objects.create(runbook="r", max_queue_seconds=5500, max_run_seconds=3600)
    assert _over_threshold_in_window(now + timedelta(seconds=31)) == 1


def test_warming_after_a_jobs_poll_spares_the_overview_its_job_queries(now, django_assert_num_queries):
    from workers.fleet.tasks import warm_job_caches
    from workers.latency.selectors import timeout_counts

    fleet = build_fleet(groups=3, workers_per_group=2, now=now, jobs_per_group=4)
    warm_job_caches(force=True)  # the frozen clock: the task computes as of ``now``
    with django_assert_num_queries(4):  # job data version, groups, recent worker polls, thresholds
        version = selectors.jobs_data_version()
        overview = selectors.fleet_overview(now=now, version=version)
        timeout_counts("24h", now=now, version=version)
    assert sum(g.jobs_24h_total for g in overview.groups) == 4 * len(fleet.groups)


def _problem_fleet(now):
    fleet = build_fleet(groups=3, workers_per_group=1, now=now, jobs_per_group=0)
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    record_polls(fleet.account, at=now - timedelta(seconds=20))
    return fleet


def test_it_names_a_group_whose_own_worker_poll_fails_while_the_account_is_fresh(now):
    fleet = _problem_fleet(now)
    broken = fleet.groups[1]
    # Its failure is older than the other groups' latest polls, so the account's newest worker poll is fine.
    PollRun.objects.filter(scope=broken.name).delete()
    PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=broken.name, started_at=now - timedelta(seconds=29),
                           finished_at=now - timedelta(seconds=28), ok=False, error="403 <b>Forbidden</b>")
    overview = selectors.fleet_overview(now=now)
    by_name = {g.name: g for g in overview.groups}
    assert by_name[broken.name].poll_problem == "worker poll failing: 403 <b>Forbidden</b>"
    assert "worker_poll_failing" in by_name[broken.name].flags
    assert [g.name for g in overview.groups if g.poll_problem] == [broken.name]
    assert selectors.data_freshness(now=now).stale is False  # the account as a whole looks fresh


def test_it_clears_the_problem_when_the_groups_next_poll_succeeds(now):
    fleet = _problem_fleet(now)
    group = fleet.groups[0]
    PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=group.name, started_at=now - timedelta(seconds=9),
                           finished_at=now - timedelta(seconds=8), ok=False, error="timeout")
    PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=group.name, started_at=now - timedelta(seconds=4),
                           finished_at=now - timedelta(seconds=3), ok=True)
    assert not any(g.poll_problem for g in selectors.fleet_overview(now=now).groups)


def test_it_names_a_group_left_out_of_the_worker_polls_but_not_a_new_one(now):
    fleet = _problem_fleet(now)
    skipped = WorkerGroup.objects.create(account=fleet.account, azure_id="/g/skipped", name="g-skipped", group_type="User")
    new = WorkerGroup.objects.create(account=fleet.account, azure_id="/g/new", name="g-new", group_type="User")
    WorkerGroup.objects.filter(pk=skipped.pk).update(first_seen_at=now - timedelta(hours=2))
    WorkerGroup.objects.filter(pk=new.pk).update(first_seen_at=now - timedelta(seconds=30))
    problems = {g.name: g.poll_problem for g in selectors.fleet_overview(now=now).groups if g.poll_problem}
    assert list(problems) == ["g-skipped"] and problems["g-skipped"].startswith("no worker poll of this group for over")


def test_it_leaves_a_silent_account_to_the_freshness_banner(now):
    fleet = build_fleet(groups=2, workers_per_group=1, now=now, jobs_per_group=0)
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    record_polls(fleet.account, at=now - timedelta(hours=1))  # every poll overdue: the account is stale
    assert not any(g.poll_problem for g in selectors.fleet_overview(now=now).groups)
    assert selectors.data_freshness(now=now).stale is True


def _fail_worker_poll(fleet, group, *, now, seconds_ago: float, error: str = "403 Forbidden") -> None:
    PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=group.name, ok=False, error=error,
                           started_at=now - timedelta(seconds=seconds_ago + 1), finished_at=now - timedelta(seconds=seconds_ago))


@pytest.mark.parametrize("failure_seconds_ago", [28, 2], ids=["failure-before-the-others", "failure-after-the-others"])
def test_one_groups_failing_poll_never_flips_the_accounts_freshness(now, failure_seconds_ago):
    # Whichever group's poll finished last, the account reads the same: fresh, with the group flagged.
    fleet = _problem_fleet(now)
    broken = fleet.groups[1]
    PollRun.objects.filter(scope=broken.name).delete()
    _fail_worker_poll(fleet, broken, now=now, seconds_ago=failure_seconds_ago)
    fresh = selectors.data_freshness(now=now)
    automation = next(s for s in fresh.sources if s.key == "automation")
    assert (fresh.stale, automation.error) == (False, "")
    assert [g.name for g in selectors.fleet_overview(now=now).unpolled] == [broken.name]


def test_the_account_is_failing_when_every_groups_latest_worker_poll_failed(now):
    fleet = _problem_fleet(now)
    for i, group in enumerate(fleet.groups):
        _fail_worker_poll(fleet, group, now=now, seconds_ago=5 - i, error=f"boom {i}")
    automation = next(s for s in selectors.data_freshness(now=now).sources if s.key == "automation")
    assert automation.stale and automation.error == "boom 2"  # the latest failure's reason


def test_a_group_that_recovered_counts_for_the_account_again(now):
    fleet = _problem_fleet(now)
    for group in fleet.groups:
        _fail_worker_poll(fleet, group, now=now, seconds_ago=9)
    PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=fleet.groups[0].name, ok=True,
                           started_at=now - timedelta(seconds=5), finished_at=now - timedelta(seconds=4))
    assert selectors.data_freshness(now=now).stale is False
    assert [g.name for g in selectors.fleet_overview(now=now).unpolled] == [g.name for g in fleet.groups[1:]]


def test_a_single_groups_failing_poll_makes_its_account_stale_at_once(now):
    fleet = build_fleet(groups=1, workers_per_group=1, now=now, jobs_per_group=0)
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    record_polls(fleet.account, at=now - timedelta(seconds=20))
    _fail_worker_poll(fleet, fleet.groups[0], now=now, seconds_ago=2)
    assert selectors.data_freshness(now=now).stale is True


def test_a_group_nobody_can_poll_sorts_with_the_degraded_groups_not_the_healthy_ones(now):
    fleet = build_fleet(groups=4, workers_per_group=2, now=now, jobs_per_group=0, group_names=["a-ok", "b-ok", "c-half", "d-down"])
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    HybridWorker.objects.filter(group__name="c-half").filter(pk=HybridWorker.objects.filter(group__name="c-half").order_by("pk")[0].pk).update(status=WorkerStatus.OFFLINE)
    HybridWorker.objects.filter(group__name="d-down").update(status=WorkerStatus.OFFLINE)
    record_polls(fleet.account, at=now - timedelta(seconds=20))
    _fail_worker_poll(fleet, WorkerGroup.objects.get(name="b-ok"), now=now, seconds_ago=2)
    names = [g.name for g in selectors.fleet_overview(now=now).groups]
    assert names == ["d-down", "c-half", "b-ok", "a-ok"]
