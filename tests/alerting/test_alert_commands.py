"""The alert-latency bench's guard (the full run is real time: see docs/speed.md)."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.alerting.factories import make_account
from tests.bench.alert_latency import Command


@pytest.mark.django_db
def test_it_refuses_to_measure_on_a_database_with_accounts():
    make_account()
    with pytest.raises(CommandError, match="scratch database"):
        call_command(Command())
