"""The emulator's own control routes: scenarios (ground truth), faults, clock, job ground truth."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from tests.fixtures.emulator import EMULATOR_NOW


@pytest.fixture
def emu(make_emulator):
    return make_emulator(seed=4, groups=4, workers=10, scenarios=False)


def call(emu, clients, method, path, payload=None, token=True):
    headers = {"Authorization": f"Bearer {clients.token()}"} if token else {}
    return requests.request(method, f"{emu.url}/_emulator/{path}", json=payload, headers=headers,
                            verify=emu.ca_bundle, timeout=10)


def member_of_largest_group(emu):
    group = max(emu.simulation.groups, key=lambda g: len(g.members))
    return emu.simulation.workers[group.members[1]]


def test_it_starts_a_scenario_and_answers_201(emu, sdk_clients):
    clients = sdk_clients(emu)
    worker = member_of_largest_group(emu)
    r = call(emu, clients, "POST", "scenarios", {"kind": "outbound_blocked", "target": worker.name, "minutes": 15})
    assert r.status_code == 201
    body = r.json()
    assert (body["kind"], body["target"], body["state"], body["minutes"]) == (
        "outbound_blocked", worker.name, "active", 15)


def test_a_started_scenario_changes_what_azure_reports(emu, sdk_clients):
    clients = sdk_clients(emu)
    worker = member_of_largest_group(emu)
    call(emu, clients, "POST", "scenarios", {"kind": "outbound_blocked", "target": worker.name, "minutes": 15})
    emu.clock.advance(600)
    got = clients.arm.hybrid_runbook_workers.get(clients.rg, clients.account, worker.group, worker.worker_id)
    assert got.properties.last_seen_date_time <= EMULATOR_NOW
    hb = clients.logs.query_workspace(
        clients.workspace, f'Heartbeat | where Computer == "{worker.name}" | summarize max(TimeGenerated)',
        timespan=timedelta(minutes=30))
    assert hb.tables[0].rows[0][0] > EMULATOR_NOW + timedelta(minutes=5)


def test_it_lists_every_scenario_with_its_state(emu, sdk_clients):
    clients = sdk_clients(emu)
    worker = member_of_largest_group(emu)
    call(emu, clients, "POST", "scenarios", {"kind": "agent_stopped", "target": worker.name, "minutes": 5})
    call(emu, clients, "POST", "scenarios", {"kind": "under_spec", "target": worker.group, "minutes": 60})
    emu.clock.advance(600)
    body = call(emu, clients, "GET", "scenarios").json()
    assert [(s["kind"], s["state"]) for s in body["value"]] == [("agent_stopped", "past"), ("under_spec", "active")]
    assert body["value"][1]["workers"] == [emu.simulation.workers[i].name
                                           for i in emu.simulation.group(worker.group).members]


def test_it_answers_400_for_a_bad_scenario(emu, sdk_clients):
    clients = sdk_clients(emu)
    for payload in ({"kind": "meteor", "target": "hrw-win-03", "minutes": 5},
                    {"kind": "agent_stopped", "target": "nobody", "minutes": 5},
                    {"kind": "agent_stopped", "target": "hrw-win-03", "minutes": "five"},
                    {"kind": "agent_stopped", "target": "hrw-win-03", "minutes": -1},
                    ["not", "an", "object"]):
        r = call(emu, clients, "POST", "scenarios", payload)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "BadRequest"


def test_it_answers_400_for_a_body_that_is_not_json(emu, sdk_clients):
    clients = sdk_clients(emu)
    r = requests.post(f"{emu.url}/_emulator/scenarios", data=b"{nope", verify=emu.ca_bundle, timeout=10,
                      headers={"Authorization": f"Bearer {clients.token()}"})
    assert r.status_code == 400


def test_control_routes_need_a_token(emu, sdk_clients):
    clients = sdk_clients(emu)
    r = call(emu, clients, "GET", "scenarios", token=False)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"


def test_it_injects_a_fault_on_demand(emu, sdk_clients):
    clients = sdk_clients(emu, retry_total=0)
    r = call(emu, clients, "POST", "faults", {"kind": "503", "count": 1, "route": "arm"})
    assert r.status_code == 201
    with pytest.raises(HttpResponseError) as info:
        list(clients.arm.hybrid_runbook_worker_group.list_by_automation_account(clients.rg, clients.account))
    assert info.value.status_code == 503


def test_it_answers_400_for_a_bad_fault(emu, sdk_clients):
    clients = sdk_clients(emu)
    for payload in ({"kind": "gremlins"}, {"kind": "503", "count": 0}, {"kind": "503", "route": "dns"}):
        assert call(emu, clients, "POST", "faults", payload).status_code == 400


def test_it_advances_a_manual_clock(emu, sdk_clients):
    clients = sdk_clients(emu)
    r = call(emu, clients, "POST", "clock", {"advance": 90})
    assert r.status_code == 200
    assert emu.clock.now() == EMULATOR_NOW + timedelta(seconds=90)


def test_it_tells_which_worker_ran_each_job(emu, sdk_clients):
    clients = sdk_clients(emu)
    truth = call(emu, clients, "GET", "jobs").json()["value"]
    names = {w.name: w.group for w in emu.simulation.workers}
    ran = [t for t in truth if t["worker"]]
    assert ran
    assert all(names[t["worker"]] == t["runOn"] for t in ran)
