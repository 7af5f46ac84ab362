"""Correlation findings against the emulator's ground truth, end to end.

Each fleet is built by the HTTPS emulator (default scenarios: one ``under_spec`` machine in the
biggest group for the whole history, plus outages on other machines), polled into the database by
the real polling services through the real Azure SDK clients, rolled up, and analysed. The
emulator keeps which worker ran each job, but never exposes it; the analysis must find the
under_spec machine from CPU/memory and group delays alone.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from workers.capacity.correlation import compute_findings
from workers.fleet import polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.rollups import rollup_utilization
from workers.models import CorrelationFinding, HybridWorker, Job, UtilizationSample

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SEEDS = [3, 7, 21]
HISTORY_HOURS = 26


def _analyse(make_emulator, settings, seed: int) -> tuple[set[str], list[CorrelationFinding], set[str]]:
    settings.POLL_BACKFILL_HOURS = HISTORY_HOURS
    emu = make_emulator(seed=seed, groups=4, workers=16, history_days=HISTORY_HOURS / 24, page_size=50)
    truth = set(emu.simulation.under_spec_workers())
    account, _created = add_account_from_connection_file(emu.connection_file)
    now = emu.clock.now()
    outcomes = polling.poll_account_once(account.pk, now=now)
    assert all(o.ok for o in outcomes), outcomes
    assert Job.objects.exists() and UtilizationSample.objects.exists()
    rollup_utilization(now - timedelta(hours=HISTORY_HOURS), now)
    run = compute_findings("24h", now)
    findings = list(run.findings.select_related("worker", "group").order_by("rank"))
    flagged_workers = {f.worker.name for f in findings if f.flagged and f.worker_id}
    return truth, findings, flagged_workers


@pytest.mark.parametrize("seed", SEEDS)
def test_it_puts_the_under_spec_machine_first_and_flags_no_healthy_worker(make_emulator, settings, seed):
    truth, findings, flagged = _analyse(make_emulator, settings, seed)
    assert len(truth) == 1
    assert findings and findings[0].flagged
    assert findings[0].worker is not None and findings[0].worker.name in truth
    true_positives = flagged & truth
    precision = len(true_positives) / len(flagged)
    recall = len(true_positives) / len(truth)
    assert (precision, recall) == (1.0, 1.0), f"flagged {sorted(flagged)}, truth {sorted(truth)}"


def test_it_flags_nothing_on_a_fleet_without_an_under_spec_machine(make_emulator, settings):
    settings.POLL_BACKFILL_HOURS = HISTORY_HOURS
    emu = make_emulator(seed=5, groups=4, workers=16, history_days=HISTORY_HOURS / 24, page_size=50, scenarios=False)
    assert emu.simulation.under_spec_workers() == []
    account, _created = add_account_from_connection_file(emu.connection_file)
    now = emu.clock.now()
    assert all(o.ok for o in polling.poll_account_once(account.pk, now=now))
    run = compute_findings("24h", now)
    assert run.pairs_examined > 0
    assert not run.findings.filter(flagged=True).exists()
    assert HybridWorker.objects.count() == 16
