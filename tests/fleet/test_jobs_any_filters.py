"""Jobs polls that work whatever ``$filter`` the service accepts (issue 13, item 5).

The real adapter and SDK against the HTTPS emulator in its lenient mode (every filter served) and its
strict mode (``lastModifiedTime``/``runOn`` filters refused with ARM's 400, as Azure may): polled
every few simulated minutes for hours, the database ends up holding every job of the emulator's
ground truth with its current status, and the exception of every failed/suspended job (list items
carry none; only a GET of the job does), so "hybrid worker was not available" is recognised.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from workers.azure.errors import ThrottleDeferred
from workers.azure.throttle import reset_throttles
from workers.fleet import job_reading, polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.models import AutomationAccount, Job, PollRun
from workers.rules.outcomes import is_not_available_failure

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_process_state():
    job_reading.reset_refusals()
    polling.close_clients()
    reset_throttles()
    yield
    job_reading.reset_refusals()
    polling.close_clients()
    reset_throttles()


def _emulator(make_emulator, mode: str):
    handle = make_emulator(seed=11, groups=3, workers=7, history_days=2 / 24, page_size=10, scenarios=False)
    handle.server.set_job_filters(mode)
    return handle


def _account(handle) -> AutomationAccount:
    account = add_account_from_connection_file(handle.connection_file)[0]
    polling.poll_groups(account.pk, now=handle.clock.now())
    return account


def _cut_off_smallest_group(handle, minutes: float) -> str:
    """Every member of the smallest user group unreachable: its jobs fail "not available" after 30 min."""
    sim = handle.simulation
    group = min((g for g in sim.groups if g.group_type == "User"), key=lambda g: len(g.members))
    for index in group.members:
        handle.start_scenario("outbound_blocked", sim.workers[index].name, minutes)
    return group.name


def _poll_for(handle, account: AutomationAccount, *, minutes: int, step: int = 5) -> None:
    for _ in range(minutes // step):
        handle.clock.advance(step * 60)
        outcome = polling.poll_jobs(account.pk, now=handle.clock.now())
        assert outcome.ok, outcome


def _truth(handle) -> dict[str, tuple[str, str]]:
    t = handle.clock.now().timestamp()
    return {j.job_id: (j.status_at(t), j.exception if j.ended is not None and j.ended <= t else "")
            for j in handle.simulation.jobs if j.created <= t}


@pytest.mark.parametrize("mode", ["lenient", "strict"])
def test_no_job_is_lost_and_every_exception_is_read(make_emulator, mode) -> None:
    handle = _emulator(make_emulator, mode)
    account = _account(handle)
    victim_group = _cut_off_smallest_group(handle, 90)
    polling.poll_jobs(account.pk, now=handle.clock.now())
    _poll_for(handle, account, minutes=150)

    truth = _truth(handle)
    stored = {job_id: (status, exception) for job_id, status, exception in
              Job.objects.filter(account=account).values_list("job_id", "status", "exception")}
    assert stored == truth  # every job, its status now, and (terminal ones) the exception a GET shows
    not_available = [j for j, (status, exc) in stored.items() if is_not_available_failure(status, exc)]
    assert not_available and all(Job.objects.get(job_id=j).run_on == victim_group for j in not_available)
    assert all(run.ok for run in PollRun.objects.filter(kind="jobs"))


def test_strict_mode_switches_strategy_once_and_says_why(make_emulator) -> None:
    handle = _emulator(make_emulator, "strict")
    account = _account(handle)
    polling.poll_jobs(account.pk, now=handle.clock.now())
    _poll_for(handle, account, minutes=30)
    runs = list(PollRun.objects.filter(kind="jobs").order_by("started_at"))
    assert runs and all(r.ok and "lastModifiedTime filter not usable" in r.error for r in runs)
    assert "HTTP 400" in runs[0].error and runs[0].error.startswith("note: ")
    refused = [r for r in handle.requests() if "lastModifiedTime" in r["query"] and "/jobs" in r["path"]]
    assert [r["status"] for r in refused] == [400]  # asked once, then remembered
    assert not [r for r in handle.requests() if "runOn" in r["query"]]


def test_lenient_mode_reads_changes_with_one_listing_and_no_note(make_emulator) -> None:
    handle = _emulator(make_emulator, "lenient")
    account = _account(handle)
    polling.poll_jobs(account.pk, now=handle.clock.now())
    _poll_for(handle, account, minutes=10)
    assert set(PollRun.objects.filter(kind="jobs").values_list("error", flat=True)) == {""}
    status_listings = [r for r in handle.requests() if "properties%2Fstatus" in r["query"] or "properties/status" in r["query"]]
    assert status_listings == []


def test_exception_reads_are_bounded_per_poll_and_finished_later(make_emulator, monkeypatch) -> None:
    monkeypatch.setattr(job_reading, "EXCEPTION_GETS_PER_POLL", 2)
    handle = _emulator(make_emulator, "strict")
    account = _account(handle)
    _cut_off_smallest_group(handle, 90)
    handle.clock.advance(100 * 60)
    polling.poll_jobs(account.pk, now=handle.clock.now())
    first = PollRun.objects.get(kind="jobs")
    assert "job exceptions left for the next poll" in first.error
    missing = Job.objects.filter(status__in=["Failed", "Suspended"], exception="").count()
    assert missing > 0
    for _ in range(missing):  # two per poll at most; enough polls to read them all
        handle.clock.advance(60)
        polling.poll_jobs(account.pk, now=handle.clock.now())
    truth = _truth(handle)
    for job_id, status, exception in Job.objects.values_list("job_id", "status", "exception"):
        assert (status, exception) == truth[job_id]


def test_a_later_list_item_never_blanks_an_exception_read_before(make_emulator) -> None:
    handle = _emulator(make_emulator, "lenient")
    account = _account(handle)
    handle.clock.advance(30 * 60)
    polling.poll_jobs(account.pk, now=handle.clock.now())
    with_exception = Job.objects.exclude(exception="").count()
    assert with_exception > 0
    handle.clock.advance(60)  # the overlap window lists the same jobs again, without exceptions
    polling.poll_jobs(account.pk, now=handle.clock.now())
    assert Job.objects.exclude(exception="").count() >= with_exception


def test_the_unfiltered_fallback_reads_the_same_new_jobs(make_emulator) -> None:
    from workers.azure import jobs as azure_jobs

    handle = _emulator(make_emulator, "strict")
    account = _account(handle)
    client = polling.azure_client(account)
    since = handle.clock.now() - timedelta(minutes=40)
    filtered = {j.job_id for j in azure_jobs.list_new_jobs(client, since=since)}
    unfiltered = {j.job_id for j in azure_jobs.list_recent_jobs(client, since=since)}
    assert filtered and unfiltered == filtered
    pages = [r for r in handle.requests() if r["path"].endswith("/jobs") and "filter" not in r["query"]]
    assert len(pages) < len(handle.simulation.jobs) // 10  # stopped paging at ``since``, not all history


def test_a_poll_without_budget_is_deferred_not_failed(make_emulator, settings) -> None:
    handle = _emulator(make_emulator, "lenient")
    account = _account(handle)
    settings.ARM_READS_BUCKET = 1
    settings.ARM_READS_REFILL_PER_SECOND = 0.1
    settings.ARM_THROTTLE_MAX_WAIT_SECONDS = 0
    settings.REDIS_URL = ""
    reset_throttles()
    polling.close_clients()
    before = PollRun.objects.count()
    watermark = AutomationAccount.objects.get(pk=account.pk).jobs_watermark
    with pytest.raises(ThrottleDeferred) as info:
        polling.poll_jobs(account.pk, now=handle.clock.now())
    assert info.value.retry_after >= 1
    assert PollRun.objects.count() == before  # no failed run: the blind alert and freshness are untouched
    assert AutomationAccount.objects.get(pk=account.pk).jobs_watermark == watermark


def _spy(monkeypatch, name: str, calls: list) -> None:
    from workers.azure import jobs as azure_jobs

    real = getattr(azure_jobs, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append((kwargs, [r.job_id for r in out]))
        return out

    monkeypatch.setattr(azure_jobs, name, spy)


def test_a_lenient_poll_lists_each_job_once(make_emulator, monkeypatch) -> None:
    # New jobs come from the creationTime listing; the changed listing asks only for older ones, so
    # a backfill of weeks does not read (and parse, and upsert) every job twice.
    handle = _emulator(make_emulator, "lenient")
    account = _account(handle)
    handle.clock.advance(30 * 60)
    polling.poll_jobs(account.pk, now=handle.clock.now())
    handle.clock.advance(10 * 60)
    new: list = []
    changed: list = []
    _spy(monkeypatch, "list_new_jobs", new)
    _spy(monkeypatch, "list_changed_jobs", changed)
    assert polling.poll_jobs(account.pk, now=handle.clock.now()).ok
    (_, new_ids), = new
    (kwargs, changed_ids), = changed
    since = kwargs["since"]
    assert kwargs["created_before"] == since
    assert new_ids and changed_ids and not set(new_ids) & set(changed_ids)
    t = handle.clock.now().timestamp()
    expected_changed = {j.job_id for j in handle.simulation.jobs
                        if j.created < since.timestamp() and j.last_modified_at(t) >= since.timestamp()}
    assert set(changed_ids) == expected_changed
    stored = {job_id: (status, exception) for job_id, status, exception in
              Job.objects.filter(account=account).values_list("job_id", "status", "exception")}
    assert stored == _truth(handle)
    changed_requests = [r for r in handle.requests() if "lastModifiedTime" in r["query"]]
    assert changed_requests and all("creationTime" in r["query"] for r in changed_requests)


def test_without_a_creation_time_filter_the_changed_listing_has_no_creation_bound(make_emulator, monkeypatch) -> None:
    from workers.azure import jobs as azure_jobs
    from workers.azure.errors import JobFilterRefused

    handle = _emulator(make_emulator, "lenient")
    account = _account(handle)
    handle.clock.advance(20 * 60)

    def refused(*_args, **_kwargs):
        raise JobFilterRefused("list new jobs: the service refused the filter (HTTP 400)", status=400)

    monkeypatch.setattr(azure_jobs, "list_new_jobs", refused)
    changed: list = []
    _spy(monkeypatch, "list_changed_jobs", changed)
    outcome = polling.poll_jobs(account.pk, now=handle.clock.now())
    assert outcome.ok
    (kwargs, _), = changed
    assert kwargs["created_before"] is None  # the unfiltered list read the new jobs; no bound to trust
    stored = {job_id: (status, exception) for job_id, status, exception in
              Job.objects.filter(account=account).values_list("job_id", "status", "exception")}
    assert stored == _truth(handle)
