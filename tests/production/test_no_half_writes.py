"""PostgreSQL goes away in the middle of a jobs poll's write: nothing of it stays (no job rows, the
watermark unmoved), the run is recorded as failed, and the next poll ingests every job once.

The connection is really lost: a trigger makes the server terminate our own backend after a few
job rows were inserted, exactly what a database restart or failover does to a writer."""
from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from workers.fleet import polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.models import AutomationAccount, Job, PollKind, PollRun

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KILL_AFTER_ROWS = 3


@pytest.fixture
def connection_dies_after_a_few_job_rows():
    table = Job._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE hrw_test_job_rows")
        cursor.execute(f"""
            CREATE FUNCTION hrw_test_die() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('hrw_test_job_rows') > {KILL_AFTER_ROWS} THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
              END IF;
              RETURN NEW;
            END $$""")
        cursor.execute(f"CREATE TRIGGER hrw_test_die BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION hrw_test_die()")
    try:
        yield
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS hrw_test_die ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS hrw_test_die()")
            cursor.execute("DROP SEQUENCE IF EXISTS hrw_test_job_rows")


def _heal() -> None:
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER hrw_test_die ON {Job._meta.db_table}")


def test_a_jobs_poll_cut_off_by_the_database_leaves_nothing_half_written(make_emulator, connection_dies_after_a_few_job_rows):
    emu = make_emulator(seed=11, groups=3, workers=8, history_days=1 / 24, page_size=3, scenarios=False)
    account = add_account_from_connection_file(emu.connection_file)[0]
    now = emu.clock.now()
    polling.poll_groups(account.pk, now=now)

    with pytest.raises(OperationalError):
        polling.poll_jobs(account.pk, now=now)
    connection.close()  # the server closed it; the next query reconnects
    assert Job.objects.count() == 0, "the rows inserted before the connection died were rolled back"
    assert AutomationAccount.objects.get(pk=account.pk).jobs_watermark is None
    failed = PollRun.objects.get(kind=PollKind.JOBS)
    assert failed.finished_at is not None and not failed.ok and "OperationalError" in failed.error

    _heal()
    outcome = polling.poll_jobs(account.pk, now=now)
    assert outcome.ok and outcome.rows > KILL_AFTER_ROWS
    ids = list(Job.objects.values_list("job_id", flat=True))
    assert len(ids) == len(set(ids)) == outcome.rows
    assert AutomationAccount.objects.get(pk=account.pk).jobs_watermark == now
