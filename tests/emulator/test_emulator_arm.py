"""The emulator's Automation (ARM) and Entra routes, through the real SDK clients over HTTPS."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.automation import AutomationClient

from tests.fixtures.emulator import EMULATOR_NOW


def odata_dt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


# ------------------------------------------------------------------------------------- entra


def test_a_real_client_secret_credential_gets_a_token(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    token = clients.credential.get_token("https://management.azure.com/.default")
    assert len(token.token) > 20
    assert emulator.server.auth.valid(token.token)


def test_it_refuses_a_wrong_client_secret(emulator):
    c = emulator.connection
    cred = ClientSecretCredential(c["tenant_id"], c["client_id"], "wrong-secret", authority=c["authority_host"],
                                  disable_instance_discovery=True, connection_verify=c["ca_bundle"])
    with pytest.raises(ClientAuthenticationError, match="7000215"):
        cred.get_token("https://management.azure.com/.default")


def test_it_issues_a_different_token_each_time(emulator):
    c = emulator.connection
    tokens = set()
    for _ in range(2):
        cred = ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"],
                                      authority=c["authority_host"], disable_instance_discovery=True,
                                      connection_verify=c["ca_bundle"])
        tokens.add(cred.get_token("https://management.azure.com/.default").token)
    assert len(tokens) == 2


# ----------------------------------------------------------------------------------------- auth


def test_it_answers_401_without_a_token(emulator):
    c = emulator.connection
    url = f"{emulator.url}/subscriptions/{c['subscription_id']}/resourceGroups/{c['resource_group']}/providers/" \
          f"Microsoft.Automation/automationAccounts/{c['automation_account']}/hybridRunbookWorkerGroups"
    r = requests.get(url, params={"api-version": "2024-10-23"}, verify=c["ca_bundle"], timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"


def test_the_sdk_raises_client_authentication_error_for_a_token_it_did_not_issue(emulator):
    from azure.core.credentials import AccessToken

    class Forged:
        def get_token(self, *scopes, **kw):
            return AccessToken("forged-token", int(datetime.now(UTC).timestamp()) + 3600)

    c = emulator.connection
    client = AutomationClient(Forged(), c["subscription_id"], base_url=c["arm_endpoint"],
                              connection_verify=c["ca_bundle"], retry_total=0)
    with pytest.raises(ClientAuthenticationError):
        list(client.hybrid_runbook_worker_group.list_by_automation_account(c["resource_group"],
                                                                           c["automation_account"]))


# ------------------------------------------------------------------------------ groups, workers


def test_it_pages_groups_and_workers_across_several_pages(make_emulator, sdk_clients):
    emu = make_emulator(seed=3, groups=8, workers=40, page_size=3, scenarios=False)
    clients = sdk_clients(emu)
    groups = list(clients.arm.hybrid_runbook_worker_group.list_by_automation_account(clients.rg, clients.account))
    assert [g.name for g in groups] == [g.name for g in emu.simulation.groups]
    names = []
    for g in groups:
        names += [w.properties.worker_name for w in
                  clients.arm.hybrid_runbook_workers.list_by_hybrid_runbook_worker_group(
                      clients.rg, clients.account, g.name)]
    assert sorted(names) == sorted(w.name for w in emu.simulation.workers)
    pages = [r for r in emu.requests() if r["path"].endswith("/hybridRunbookWorkerGroups")]
    assert len(pages) == 3  # 8 groups at 3 per page
    assert [r["query"].count("$skip=") for r in pages] == [0, 1, 1]


def test_it_serves_group_and_worker_fields_in_the_wire_shapes(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    groups = {g.name: g for g in clients.arm.hybrid_runbook_worker_group.list_by_automation_account(
        clients.rg, clients.account)}
    assert groups["update-management-system"].properties.group_type == "System"
    assert groups["hrw-win-legacy"].properties.group_type == "User"
    (worker,) = clients.arm.hybrid_runbook_workers.list_by_hybrid_runbook_worker_group(
        clients.rg, clients.account, "hrw-win-legacy")
    p = worker.properties
    assert p.worker_name == "hrw-win-03"
    assert p.worker_type == "HybridV1"
    assert timedelta(0) <= EMULATOR_NOW - p.last_seen_date_time < timedelta(seconds=30)
    assert p.registered_date_time < p.last_seen_date_time
    assert worker.name == emulator.simulation.worker("hrw-win-03").worker_id
    assert worker.id.endswith(f"/hybridRunbookWorkerGroups/hrw-win-legacy/hybridRunbookWorkers/{worker.name}")


def test_it_gets_one_group_and_one_worker(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    sim_worker = emulator.simulation.workers[5]
    group = clients.arm.hybrid_runbook_worker_group.get(clients.rg, clients.account, sim_worker.group)
    worker = clients.arm.hybrid_runbook_workers.get(clients.rg, clients.account, sim_worker.group,
                                                    sim_worker.worker_id)
    assert group.name == sim_worker.group
    assert worker.properties.worker_name == sim_worker.name


def test_it_answers_404_for_an_unknown_group(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(ResourceNotFoundError) as info:
        clients.arm.hybrid_runbook_worker_group.get(clients.rg, clients.account, "no-such-group")
    assert info.value.error.code == "NotFound"


def test_it_answers_404_for_another_automation_account(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(ResourceNotFoundError):
        list(clients.arm.hybrid_runbook_worker_group.list_by_automation_account(clients.rg, "other-account"))


def test_it_matches_arm_path_segments_case_insensitively(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    c = emulator.connection
    url = (f"{emulator.url}/SUBSCRIPTIONS/{c['subscription_id'].upper()}/resourcegroups/{c['resource_group'].upper()}"
           f"/providers/microsoft.automation/AUTOMATIONACCOUNTS/{c['automation_account']}/hybridrunbookworkergroups")
    r = requests.get(url, params={"api-version": "2015-10-31"}, verify=c["ca_bundle"], timeout=10,
                     headers={"Authorization": f"Bearer {clients.token()}"})
    assert r.status_code == 200
    assert [g["name"] for g in r.json()["value"]][:2] == ["update-management-system", "hrw-win-legacy"]


def test_it_builds_absolute_next_links_back_to_itself(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    c = emulator.connection
    url = (f"{emulator.url}/subscriptions/{c['subscription_id']}/resourceGroups/{c['resource_group']}/providers/"
           f"Microsoft.Automation/automationAccounts/{c['automation_account']}/jobs")
    r = requests.get(url, params={"api-version": "2024-10-23"}, verify=c["ca_bundle"], timeout=10,
                     headers={"Authorization": f"Bearer {clients.token()}"})
    body = r.json()
    assert len(body["value"]) == 5
    assert body["nextLink"].startswith(f"{emulator.url}/subscriptions/")
    assert "$skip=5" in body["nextLink"]


def test_it_requires_an_api_version(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    c = emulator.connection
    url = (f"{emulator.url}/subscriptions/{c['subscription_id']}/resourceGroups/{c['resource_group']}/providers/"
           f"Microsoft.Automation/automationAccounts/{c['automation_account']}/jobs")
    r = requests.get(url, verify=c["ca_bundle"], timeout=10, headers={"Authorization": f"Bearer {clients.token()}"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "MissingApiVersionParameter"


# ------------------------------------------------------------------------------------------ jobs


def all_jobs(clients, flt=None):
    return list(clients.arm.job.list_by_automation_account(clients.rg, clients.account, filter=flt))


def visible_sim_jobs(emulator):
    now = emulator.clock.now().timestamp()
    return [j for j in emulator.simulation.jobs if j.created <= now]


def test_it_lists_every_job_across_pages(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    jobs = all_jobs(clients)
    assert sorted(j.name for j in jobs) == sorted(j.job_id for j in visible_sim_jobs(emulator))
    assert len(jobs) > 10


def test_it_filters_jobs_by_creation_time(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    since = EMULATOR_NOW - timedelta(minutes=30)
    jobs = all_jobs(clients, f"properties/creationTime ge {odata_dt(since)}")
    expected = {j.job_id for j in visible_sim_jobs(emulator) if j.created >= since.timestamp()}
    assert {j.name for j in jobs} == expected
    assert 0 < len(expected) < len(visible_sim_jobs(emulator))


@pytest.mark.parametrize("op", ["ge", "gt", "le", "lt"])
def test_every_creation_time_operator_is_answered_exactly(emulator, sdk_clients, op):
    # The creation-time index answers these clauses alone (no job-by-job re-check): each operator, at
    # a bound within a microsecond of a job's creation, lists exactly the jobs on its side.
    clients = sdk_clients(emulator)
    visible = visible_sim_jobs(emulator)
    bound = datetime.fromtimestamp(visible[len(visible) // 2].created, UTC)
    jobs = all_jobs(clients, f"properties/creationTime {op} {odata_dt(bound)}")
    ref = bound.timestamp()
    keep = {"ge": ref.__le__, "gt": ref.__lt__, "le": ref.__ge__, "lt": ref.__gt__}[op]
    expected = {j.job_id for j in visible if keep(j.created)}
    assert {j.name for j in jobs} == expected
    assert 0 < len(expected) < len(visible)


def test_it_lists_the_older_jobs_changed_since_with_a_creation_time_bound(emulator, sdk_clients):
    # What a jobs poll sends after listing the jobs created since: the older ones that changed since.
    clients = sdk_clients(emulator)
    since = EMULATOR_NOW - timedelta(minutes=20)
    jobs = all_jobs(clients, f"properties/lastModifiedTime ge {odata_dt(since)} and properties/creationTime lt {odata_dt(since)}")
    now, ref = EMULATOR_NOW.timestamp(), since.timestamp()
    expected = {j.job_id for j in visible_sim_jobs(emulator) if j.last_modified_at(now) >= ref and j.created < ref}
    assert {j.name for j in jobs} == expected
    assert expected


def test_it_filters_jobs_by_last_modified_time_with_a_z_suffix(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    since = EMULATOR_NOW - timedelta(minutes=20)
    jobs = all_jobs(clients, f"properties/lastModifiedTime gt {since:%Y-%m-%dT%H:%M:%SZ}")
    now = EMULATOR_NOW.timestamp()
    expected = {j.job_id for j in visible_sim_jobs(emulator) if j.last_modified_at(now) > since.timestamp()}
    assert {j.name for j in jobs} == expected
    assert expected


def test_it_filters_jobs_by_status_and_run_on(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    jobs = all_jobs(clients, "properties/status eq 'Completed' and properties/runOn eq 'hrw-linux-prod'")
    assert jobs
    assert {(j.properties.status, j.properties.run_on) for j in jobs} == {("Completed", "hrw-linux-prod")}


def test_it_reads_doubled_quotes_in_filter_strings(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    assert all_jobs(clients, "properties/runOn eq 'o''brien'") == []


def test_it_answers_400_for_a_filter_it_cannot_parse(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    for bad in ("properties/status eq Completed", "properties/creationTime ge yesterday",
                "properties/status eq 'Completed' or properties/status eq 'Failed'",
                "properties/jobId eq 'x'", "1 eq 1; drop table jobs", "properties/status gt 'A'"):
        with pytest.raises(HttpResponseError) as info:
            all_jobs(clients, bad)
        assert info.value.status_code == 400
        assert info.value.error.code == "BadRequest"


def test_it_keeps_unknown_status_strings(make_emulator, sdk_clients):
    emu = make_emulator(seed=3, groups=4, workers=12, scenarios=False)
    group = max(emu.simulation.groups, key=lambda g: len(g.members))
    emu.start_scenario("site_down", group.name, 60)  # nobody picks the group's jobs up: they wait
    emu.clock.advance(40 * 60)
    clients = sdk_clients(emu)
    statuses = {j.properties.status for j in all_jobs(clients, f"properties/runOn eq '{group.name}'")}
    assert "Queued" in statuses  # not in the SDK's JobStatus enum: it comes back as a plain string
    assert "New" in statuses


def test_it_gets_one_job_with_its_exception(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    now = EMULATOR_NOW.timestamp()
    failed = next(j for j in visible_sim_jobs(emulator) if j.status_at(now) == "Failed" and j.exception)
    job = clients.arm.job.get(clients.rg, clients.account, failed.job_id)
    assert job.properties.status == "Failed"
    assert job.properties.exception == failed.exception
    assert job.properties.end_time is not None


def test_it_answers_404_for_an_unknown_job(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(ResourceNotFoundError):
        clients.arm.job.get(clients.rg, clients.account, "00000000-0000-0000-0000-000000000000")


def test_job_timestamps_are_consistent(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    for job in all_jobs(clients):
        p = job.properties
        assert p.creation_time <= p.last_modified_time <= EMULATOR_NOW
        if p.start_time:
            assert p.creation_time <= p.start_time
        if p.end_time:
            assert p.status in ("Completed", "Failed", "Stopped", "Suspended")


def test_jobs_older_than_30_days_are_gone(make_emulator, sdk_clients):
    emu = make_emulator(seed=5, groups=3, workers=4, history_days=31, scenarios=False)
    clients = sdk_clients(emu, retry_total=0)
    cutoff = EMULATOR_NOW - timedelta(days=30)
    listed = all_jobs(clients, f"properties/creationTime lt {odata_dt(cutoff + timedelta(hours=2))}")
    old = next(j for j in emu.simulation.jobs if j.created < cutoff.timestamp())
    assert listed and all(j.properties.creation_time >= cutoff for j in listed)
    with pytest.raises(ResourceNotFoundError):
        clients.arm.job.get(clients.rg, clients.account, old.job_id)
