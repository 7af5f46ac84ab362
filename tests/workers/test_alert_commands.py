"""measure_alert_latency's guard (the full run is real time: see readme-alerts.md for figures)."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.workers.alert_factories import make_account


@pytest.mark.django_db
def test_it_refuses_to_measure_on_a_database_with_accounts():
    make_account()
    with pytest.raises(CommandError, match="scratch database"):
        call_command("measure_alert_latency")
