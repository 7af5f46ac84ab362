"""A job's streams on the job page: read from Azure (the real SDK against the emulator) only when
asked for, escaped, kept for a minute, and an Azure failure is a sentence on the page, never a 500."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache

from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.polling import close_clients, poll_jobs
from workers.models import AutomationAccount, Job

pytestmark = pytest.mark.django_db(transaction=True)


def _stream_requests(emu) -> list[dict]:
    return [r for r in emu.requests() if "/streams" in str(r.get("path", ""))]


@pytest.fixture
def failed_job(make_emulator):
    emu = make_emulator(seed=7, groups=3, workers=9, history_days=1, page_size=500)
    account, _ = add_account_from_connection_file(str(emu.connection_file), "streams")
    now = emu.clock.now()
    with time_machine.travel(now, tick=False):
        poll_jobs(account.pk, now=now, floor=now - timedelta(days=1))
    sim_job = next(j for j in emu.simulation.jobs if j.exception and j.ended is not None and j.ended <= now.timestamp())
    job = Job.objects.get(job_id=sim_job.job_id)
    cache.clear()
    yield emu, job, sim_job
    close_clients()


def test_streams_are_read_only_when_asked_and_shown_escaped(client_in, failed_job):
    emu, job, sim_job = failed_job
    page = client_in.get(f"/jobs/{job.job_id}/").content.decode()
    assert "Read this job’s streams from Azure" in page
    assert _stream_requests(emu) == []  # opening the page asks Azure nothing

    page = client_in.get(f"/jobs/{job.job_id}/?streams=1").content.decode()
    assert "data-streams" in page and ">Error<" in page
    summary = sim_job.exception[:200]
    assert summary.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#x27;") in page
    assert len(_stream_requests(emu)) == 1
    client_in.get(f"/jobs/{job.job_id}/?streams=1")
    assert len(_stream_requests(emu)) == 1  # kept for a minute: a reload does not read Azure again


def test_an_azure_failure_is_a_sentence_not_a_500(client_in, failed_job):
    emu, job, _ = failed_job
    emu.inject_fault("403", count=10, route="arm")
    response = client_in.get(f"/jobs/{job.job_id}/?streams=1")
    assert response.status_code == 200
    assert "Could not read the streams" in response.content.decode()


def test_an_account_whose_azure_is_gone_still_shows_the_job(client_in, failed_job):
    emu, job, _ = failed_job
    AutomationAccount.objects.filter(pk=job.account_id).update(arm_endpoint="https://127.0.0.1:9")
    close_clients()
    response = client_in.get(f"/jobs/{job.job_id}/?streams=1")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Could not read the streams" in body and job.job_id in body
