"""Kiosk soak (opt-in): the wall stays open in headless Chromium on an emulator-fed fleet with a
fast refresh, and the JS heap and the DOM must stay flat. Not in the default suite: set
HRW_SOAK_MINUTES (30 for the issue's figure), optionally HRW_SOAK_SAMPLE_SECONDS (default 60) and
HRW_SOAK_GROUPS (default 60: more than one page at 1920x1080, so pages rotate too). Run with -s to
see the table."""
from __future__ import annotations

import os
import random

import pytest
from django.utils import timezone

from tests.browser.pipeline import poll_and_refresh, register
from tests.browser.soak import soak
from workers.models import HybridWorker, WorkerGroup

MINUTES = float(os.environ.get("HRW_SOAK_MINUTES") or 0)
SAMPLE_SECONDS = float(os.environ.get("HRW_SOAK_SAMPLE_SECONDS") or 60)
GROUPS = int(os.environ.get("HRW_SOAK_GROUPS") or 60)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(MINUTES <= 0, reason="kiosk soak is opt-in: set HRW_SOAK_MINUTES (e.g. 30)"),
]


def test_it_keeps_heap_and_dom_flat_on_the_wall(login_cookie, browser, make_emulator, live_server):
    from dashboard.auth import issue_token

    emulator = make_emulator(seed=7, groups=GROUPS, workers=GROUPS * 4, history_days=0.05, realtime=True,
                             start=timezone.now(), scenarios=True)
    account = register(emulator)
    poll_and_refresh(account, now=timezone.now())
    names = list(WorkerGroup.objects.values_list("name", flat=True))
    workers = list(HybridWorker.objects.values_list("name", flat=True))
    rng = random.Random(7)
    _token, raw = issue_token(name="soak")

    def churn() -> None:
        # Keep the picture moving like a real fleet: a site goes dark, a worker flaps, and the
        # next poll + status refresh changes tiles (with a real clock, so this is the demo).
        emulator.start_scenario("site_down", rng.choice(names), 2)
        emulator.start_scenario("flapping", rng.choice(workers), 3)
        poll_and_refresh(account, now=timezone.now())

    result = soak(browser, f"{live_server.url}/wall/?token={raw}&refresh=5&rotate=5", minutes=MINUTES,
                  sample_seconds=SAMPLE_SECONDS, between_samples=churn)

    print("\n" + result.table())
    assert result.console_errors == []
    assert result.refreshes >= MINUTES * 60 / 5 * 0.8
    assert result.flat, result.table()
