"""``manage.py poll --once`` reads the HybridWorkerPing too (through the real azure-mgmt-monitor client
against the emulator), before the status refresh; an account whose ping was never read and cannot be
read now prints "not available" and is not counted as a failed poll."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from workers.fleet.accounts import add_account_from_connection_file
from workers.models import HybridWorker, PollRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def emu(make_emulator):
    return make_emulator(seed=11, groups=3, workers=8, history_days=1 / 24, page_size=3, scenarios=False)


def test_poll_once_reads_every_workers_ping(emu, time_machine):
    time_machine.move_to(emu.clock.now(), tick=False)
    add_account_from_connection_file(emu.connection_file)
    out = StringIO()
    call_command("poll", "--once", stdout=out)
    text = out.getvalue()
    assert "ping     : 8 rows" in text and "All polls succeeded." in text
    run = PollRun.objects.get(kind="ping")
    assert run.ok and run.finished_at is not None and run.rows == 8
    assert not HybridWorker.objects.filter(last_ping_at__isnull=True).exists()
    # The ping was read before the refresh judged the workers: their reasons name it.
    assert all("HybridWorkerPing" in r for r in HybridWorker.objects.values_list("status_reason", flat=True))


def test_a_ping_never_read_and_unreadable_is_not_available_not_a_failure(emu):
    add_account_from_connection_file(emu.connection_file)
    emu.close()
    out = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("poll", "--once", stdout=out)
    assert "ping     : not available (" in out.getvalue()
    assert " ping:" not in str(failed.value)  # the other polls failed; the ping is just not available
    assert PollRun.objects.filter(kind="ping", ok=False).count() == 1
