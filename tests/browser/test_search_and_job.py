"""The top bar's search and the job page in headless Chromium: a job id typed in the search box
opens its job page (durations in human units with the exact seconds on hover, the exception as
text, the portal link), a partial name lists workers and groups, and both pages fit a 390-px phone.

The fleet is written with the ORM (the pages read only the database); the live server and the
browser are real."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.fixtures.web import build_fleet, record_polls
from workers.models import Job, WorkerStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JOB_ID = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0102"
HOSTILE = "<img src=x onerror=alert(1)> failed"


@pytest.fixture
def fleet() -> dict[str, Any]:
    now = timezone.now().replace(microsecond=0)
    fleet = build_fleet(groups=2, workers_per_group=2, now=now, statuses=[WorkerStatus.ONLINE],
                        group_names=["update-management-eu-west", "payroll-batch"])
    record_polls(fleet.account, at=now - timedelta(seconds=10))
    group = fleet.groups[0]
    Job.objects.create(
        account=fleet.account, job_id=JOB_ID, runbook="Invoice-Export", status="Failed", run_on=group.name, group=group,
        created_at=now - timedelta(minutes=40), started_at=now - timedelta(minutes=40) + timedelta(seconds=1346.8),
        ended_at=now - timedelta(minutes=10), queue_seconds=1346.8, duration_seconds=453.2, exception=HOSTILE,
    )
    return {"fleet": fleet, "group": group, "worker": fleet.workers[0]}


def _no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert width[0] <= width[1], width


def test_a_job_id_in_the_search_box_opens_the_job_page(login_cookie, fleet):
    page = login_cookie.page
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(login_cookie.origin + "/", wait_until="networkidle")
    box = page.get_by_role("searchbox", name="Search workers, groups, runbooks and job ids")
    box.fill(JOB_ID)
    box.press("Enter")
    page.wait_for_url(f"**/jobs/{JOB_ID}/**")
    assert "Invoice-Export" in page.locator("h1").inner_text()
    queue = page.locator('[data-field="queue"] .dur')
    assert queue.inner_text() == "22.4 min"
    assert queue.get_attribute("title") == "1346.8 s"
    assert page.locator('[data-field="duration"] .dur').get_attribute("title") == "453.2 s"
    # Azure's exception text is shown as text, never run as markup.
    assert page.locator('[data-field="exception"]').inner_text() == HOSTILE
    assert page.locator("img[src=x]").count() == 0
    portal = page.locator("[data-portal-link]")
    assert portal.get_attribute("href").endswith(f"/jobs/{JOB_ID}")
    assert portal.get_attribute("rel") == "noopener noreferrer"
    # The jobs list links back here: its row's id goes to the same page.
    page.goto(login_cookie.origin + "/jobs/", wait_until="networkidle")
    page.locator(f'a[title="Job {JOB_ID}"]').click()
    page.wait_for_url(f"**/jobs/{JOB_ID}/**", wait_until="networkidle")
    login_cookie.assert_clean()


def test_a_partial_name_lists_workers_and_groups_and_the_pages_fit_a_phone(login_cookie, fleet):
    page = login_cookie.page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(login_cookie.origin + "/jobs/", wait_until="networkidle")
    _no_horizontal_scroll(page)
    box = page.get_by_role("searchbox", name="Search workers, groups, runbooks and job ids")
    assert box.is_visible()
    box.fill("update-manage")
    box.press("Enter")
    page.wait_for_url("**/search/?q=update-manage")
    _no_horizontal_scroll(page)
    groups = page.locator("section[aria-labelledby=hits-groups] a")
    assert groups.all_inner_texts() == ["update-management-eu-west"]  # the full name, not cut
    assert page.locator("section[aria-labelledby=hits-workers] li").count() == 0
    groups.first.click()
    page.wait_for_url(f"**/groups/{fleet['group'].pk}/", wait_until="networkidle")
    page.goto(f"{login_cookie.origin}/jobs/{JOB_ID}/", wait_until="networkidle")
    _no_horizontal_scroll(page)
    login_cookie.assert_clean()
