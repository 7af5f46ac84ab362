"""The emulator's Azure Monitor metrics route (HybridWorkerPing), read through the real
azure-mgmt-monitor client with a real ClientSecretCredential over HTTPS, and our ``PingReader``."""
from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.monitor import MonitorManagementClient

from workers.azure.connection import connection_from_file
from workers.azure.metrics import METRIC, SPLIT_FILTER, PingReader, account_resource_id, timespan

pytestmark = pytest.mark.slow


@pytest.fixture
def emu(make_emulator):
    return make_emulator(seed=11, groups=3, workers=8, history_days=1 / 24, page_size=50, scenarios=False)


@pytest.fixture
def monitor(emu):
    c = emu.connection
    cred = ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"], authority=c["authority_host"],
                                  disable_instance_discovery=True, connection_verify=c["ca_bundle"])
    client = MonitorManagementClient(cred, c["subscription_id"], base_url=c["arm_endpoint"], connection_verify=c["ca_bundle"],
                                     retry_total=0)
    yield client, account_resource_id(connection_from_file(emu.connection_file))
    client.close()
    cred.close()


def _list(monitor, emu, minutes: int = 10, **kwargs):
    client, rid = monitor
    now = emu.clock.now()
    return client.metrics.list(rid, timespan=timespan(now - timedelta(minutes=minutes), now), interval="PT1M",
                               metricnames=METRIC, aggregation="Total", **kwargs)


def test_it_answers_in_the_documented_shape_split_by_worker(monitor, emu):
    answer = _list(monitor, emu, filter=SPLIT_FILTER, top=100)
    assert answer.interval == "PT1M" and answer.namespace == "microsoft.automation/automationaccounts"
    (metric,) = answer.value
    assert metric.name.value == METRIC and metric.unit == "Count" and metric.error_code == "Success"
    names = {s.metadatavalues[0].value for s in metric.timeseries}
    assert names == {w.name for w in emu.server.sim.workers}
    assert {s.metadatavalues[0].name.value for s in metric.timeseries} == {"hybridworker"}
    series = metric.timeseries[0]
    assert len(series.data) == 10
    # Two pings a minute (a poll every 30 s); the newest minutes have not landed yet (1-3 min late).
    assert {p.total for p in series.data[:6]} == {2.0}
    assert series.data[-1].total is None


def test_with_a_filter_it_returns_top_10_series_unless_told(make_emulator):
    emu = make_emulator(seed=5, groups=3, workers=14, history_days=1 / 24, page_size=50, scenarios=False)
    with PingReader(connection_from_file(emu.connection_file)) as reader:
        now = emu.clock.now()
        assert len(reader.read(start=now - timedelta(minutes=10), end=now)) == 14  # we ask for all
    c = emu.connection
    cred = ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"], authority=c["authority_host"],
                                  disable_instance_discovery=True, connection_verify=c["ca_bundle"])
    with MonitorManagementClient(cred, c["subscription_id"], base_url=c["arm_endpoint"], connection_verify=c["ca_bundle"]) as client:
        answer = client.metrics.list(account_resource_id(connection_from_file(emu.connection_file)),
                                     metricnames=METRIC, filter=SPLIT_FILTER)
        assert len(answer.value[0].timeseries) == 10
    cred.close()


def test_one_worker_by_value_and_the_account_total_without_a_filter(monitor, emu):
    name = emu.server.sim.workers[3].name
    one = _list(monitor, emu, filter=f"HybridWorker eq '{name}'")
    assert [s.metadatavalues[0].value for s in one.value[0].timeseries] == [name]
    total = _list(monitor, emu)
    (series,) = total.value[0].timeseries
    assert series.metadatavalues == [] and series.data[0].total == 2.0 * len(emu.server.sim.workers)


def test_a_stopped_service_stops_its_pings_after_the_metric_latency(emu):
    sim = emu.server.sim
    victim = next(w for w in sim.workers if w.worker_type == "HybridV2")
    emu.start_scenario("service_stopped", victim.name, 30)
    stopped = emu.clock.now()
    emu.clock.advance(10 * 60)
    now = emu.clock.now()
    with PingReader(connection_from_file(emu.connection_file)) as reader:
        found = {r.worker: r for r in reader.read(start=now - timedelta(minutes=15), end=now)}
    assert found[victim.name].last_ping_at < stopped
    others = [r for name, r in found.items() if name != victim.name]
    assert others and all(now - r.last_ping_at <= timedelta(minutes=5) for r in others)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"filter": "HybridWorker eq 'x' or 1 eq 1"}, "BadRequest"),
        ({"filter": "Computer eq '*'"}, "BadRequest"),
        ({"metricnames": "Percentage CPU"}, "BadRequest"),
        ({"interval": "PT5M"}, "BadRequest"),
    ],
)
def test_bad_requests_get_a_400_never_a_500(monitor, emu, kwargs, code):
    client, rid = monitor
    args = {"metricnames": METRIC, **kwargs}
    with pytest.raises(HttpResponseError) as info:
        client.metrics.list(rid, **args)
    assert info.value.status_code == 400 and info.value.error.code == code
