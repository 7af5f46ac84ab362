"""The emulator behaves like Azure where the product must cope: job list items without ``exception``
(only a GET of one job has it), a strict mode refusing ``lastModifiedTime``/``runOn`` filters with
ARM's 400, and ARM's read token bucket (429 + Retry-After, the remaining-reads header). Real SDK
clients over HTTPS."""
from __future__ import annotations

from io import StringIO

import pytest
from azure.core.exceptions import HttpResponseError
from django.core.management import CommandError, call_command

from workers.emulator.server.arm import REMAINING_READS

SINCE = "2026-11-20T10:00:00.0000000+00:00"


def _failed_job(handle):
    t = handle.clock.now().timestamp()
    jobs = [j for j in handle.simulation.jobs if j.exception and j.ended is not None and j.ended <= t]
    assert jobs, "the simulation has a failed job with an exception"
    return jobs[-1]


def _headers():
    seen: list[dict[str, str]] = []
    return seen, lambda response: seen.append(dict(response.http_response.headers))


def test_list_items_carry_no_exception_but_a_get_does(make_emulator, sdk_clients) -> None:
    handle = make_emulator(seed=5, groups=3, workers=9, history_days=6 / 24, scenarios=False)
    sdk = sdk_clients(handle)
    job = _failed_job(handle)
    listed = [j.as_dict() for j in sdk.arm.job.list_by_automation_account(sdk.rg, sdk.account)]
    assert listed and all("exception" not in j["properties"] for j in listed)
    got = sdk.arm.job.get(sdk.rg, sdk.account, job.job_id).as_dict()
    assert got["properties"]["exception"] == job.exception


@pytest.mark.parametrize("flt", [f"properties/lastModifiedTime ge {SINCE}", "properties/runOn eq 'g1'",
                                 f"properties/creationTime ge {SINCE} and properties/runOn eq 'g1'"])
def test_strict_mode_refuses_last_modified_and_run_on_filters_with_arms_400(make_emulator, sdk_clients, flt) -> None:
    handle = make_emulator(seed=5, groups=3, workers=9, scenarios=False)
    handle.server.set_job_filters("strict")
    sdk = sdk_clients(handle, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        list(sdk.arm.job.list_by_automation_account(sdk.rg, sdk.account, filter=flt))
    assert info.value.status_code == 400
    body = info.value.response.json()
    assert body["error"]["code"] == "BadRequest" and "is not supported in a filter on jobs" in body["error"]["message"]


@pytest.mark.parametrize("flt", [f"properties/creationTime ge {SINCE}", "properties/status eq 'Running'",
                                 f"properties/endTime ge {SINCE}"])
def test_strict_mode_still_serves_the_filters_microsoft_uses(make_emulator, sdk_clients, flt) -> None:
    handle = make_emulator(seed=5, groups=3, workers=9, history_days=3 / 24, scenarios=False)
    handle.server.set_job_filters("strict")
    sdk = sdk_clients(handle, retry_total=0)
    list(sdk.arm.job.list_by_automation_account(sdk.rg, sdk.account, filter=flt))


def test_lenient_mode_accepts_last_modified_and_run_on(make_emulator, sdk_clients) -> None:
    handle = make_emulator(seed=5, groups=3, workers=9, history_days=3 / 24, scenarios=False)
    sdk = sdk_clients(handle, retry_total=0)
    group = handle.simulation.groups[0].name
    jobs = list(sdk.arm.job.list_by_automation_account(
        sdk.rg, sdk.account, filter=f"properties/lastModifiedTime ge {SINCE} and properties/runOn eq '{group}'"))
    assert all(j.as_dict()["properties"]["runOn"] == group for j in jobs)


def test_an_unknown_filter_mode_is_refused(make_emulator) -> None:
    handle = make_emulator(seed=5, groups=2, workers=4, scenarios=False)
    with pytest.raises(ValueError):
        handle.server.set_job_filters("sloppy")
    with pytest.raises(ValueError):
        handle.server.configure_arm_throttle(-1)


def test_the_read_bucket_answers_429_with_retry_after_once_empty(make_emulator, sdk_clients) -> None:
    handle = make_emulator(seed=5, groups=3, workers=9, scenarios=False)
    handle.server.configure_arm_throttle(3, 0.01)  # practically no refill during the test
    sdk = sdk_clients(handle, retry_total=0)
    seen, hook = _headers()
    for _ in range(3):
        list(sdk.arm.hybrid_runbook_worker_group.list_by_automation_account(sdk.rg, sdk.account, raw_response_hook=hook))
    assert [int(h[REMAINING_READS]) for h in seen] == [2, 1, 0]
    with pytest.raises(HttpResponseError) as info:
        list(sdk.arm.hybrid_runbook_worker_group.list_by_automation_account(sdk.rg, sdk.account))
    response = info.value.response
    assert info.value.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.headers[REMAINING_READS] == "0"
    assert response.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert handle.server.throttled_count == 1


def test_without_a_bucket_nothing_is_throttled(make_emulator, sdk_clients) -> None:
    handle = make_emulator(seed=5, groups=3, workers=9, scenarios=False)
    sdk = sdk_clients(handle, retry_total=0)
    seen, hook = _headers()
    for _ in range(30):
        list(sdk.arm.hybrid_runbook_worker_group.list_by_automation_account(sdk.rg, sdk.account, raw_response_hook=hook))
    assert handle.server.throttled_count == 0 and all(REMAINING_READS in h for h in seen)


def test_the_command_refuses_a_bad_bucket() -> None:
    with pytest.raises(CommandError):
        call_command("azure_emulator", "--arm-bucket", "-5", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("azure_emulator", "--arm-refill", "0", stdout=StringIO())


@pytest.mark.slow
def test_the_command_starts_strict_and_throttled_before_it_says_ready(tmp_path) -> None:
    import json
    import signal
    import subprocess
    import sys

    from azure.identity import ClientSecretCredential
    from azure.mgmt.automation import AutomationClient

    from tests.emulator.test_emulator_command import MANAGE, wait_for

    conn_file = tmp_path / "conn.json"
    proc = subprocess.Popen(
        [sys.executable, str(MANAGE), "azure_emulator", "--groups", "2", "--workers", "4", "--history-days", "0",
         "--no-scenarios", "--job-filters", "strict", "--arm-bucket", "2", "--arm-refill", "0.01",
         "--connection-file", str(conn_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_for(conn_file, proc)
        c = json.loads(conn_file.read_text())
        cred = ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"], authority=c["authority_host"],
                                      disable_instance_discovery=True, connection_verify=c["ca_bundle"])
        arm = AutomationClient(cred, c["subscription_id"], base_url=c["arm_endpoint"],
                               connection_verify=c["ca_bundle"], retry_total=0)
        rg, acct = c["resource_group"], c["automation_account"]
        with pytest.raises(HttpResponseError) as refused:
            list(arm.job.list_by_automation_account(rg, acct, filter=f"properties/lastModifiedTime ge {SINCE}"))
        assert refused.value.status_code == 400  # strict from the first request
        list(arm.hybrid_runbook_worker_group.list_by_automation_account(rg, acct))
        with pytest.raises(HttpResponseError) as throttled:
            list(arm.hybrid_runbook_worker_group.list_by_automation_account(rg, acct))
        assert throttled.value.status_code == 429
        assert not conn_file.with_name(conn_file.name + ".starting").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
    assert b"Job filters: strict; ARM read throttling: 2 reads" in out
