"""The live pages in headless Chromium: overview, group, worker and alerts pages update themselves
(static/js/live.js swaps the server-rendered [data-live-part] pieces) without a reload, and ages tick.

The status change is driven in-process and deterministically: the emulator's clock is advanced and
the same poll + status refresh + alert outbox the Celery tasks run are called here. Pages run with
``?refresh=3``, so "within one poll interval" is 3 s plus a few seconds of slack for the fetch and
render on this shared 2-core machine. Waits are conditions with deadlines, never sleeps."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.browser.fleet import build_fleet
from tests.browser.pipeline import poll_and_refresh, register
from workers.models import HybridWorker, WorkerGroup, WorkerStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFRESH = 3
ONE_POLL_MS = (REFRESH + 7) * 1000
MARKER = "window.__liveMarker"


def _open(context: Any, origin: str, path: str, page: Any = None) -> Any:
    page = page or context.new_page()
    response = page.goto(f"{origin}{path}{'&' if '?' in path else '?'}refresh={REFRESH}", wait_until="domcontentloaded")
    assert response is not None and response.status == 200, path
    page.wait_for_function("() => !!(window.hrw && window.hrw.live)")
    page.evaluate(f"{MARKER} = 'kept'")
    return page


def _remaining_ms(deadline: float) -> float:
    return max(1.0, (deadline - time.monotonic()) * 1000)


def test_an_agent_stopped_shows_on_the_overview_group_and_worker_pages_without_a_reload(login_cookie, browser_user, make_emulator):
    from dashboard.roles import set_role
    from workers.alerting.outbox import process_outbox

    set_role(browser_user, "operator")  # the Acknowledge button is for operators
    # The emulator starts 12 minutes in the past so that, once its clock is advanced past the
    # offline thresholds (Automation 180 s, heartbeat 600 s), its time matches the server's again.
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=12)
    emulator = make_emulator(seed=5, groups=3, workers=9, history_days=0.05, scenarios=False, start=start)
    account = register(emulator)
    poll_and_refresh(account, now=start)
    group = next(g for g in WorkerGroup.objects.filter(account=account).order_by("name") if g.workers.count() >= 2)
    worker = HybridWorker.objects.filter(group=group).order_by("name").first()
    assert worker.status == WorkerStatus.ONLINE

    watch = login_cookie
    origin, context = watch.origin, watch.context
    overview = _open(context, origin, "/", page=watch.page)
    group_page = _open(context, origin, f"/groups/{group.pk}/")
    worker_page = _open(context, origin, f"/workers/{worker.pk}/")
    health = f'td[data-group-id="{group.pk}"]'
    member = f'[data-live-part="m{worker.pk}-status"]'
    head = '[data-live-part="worker-head"]'
    assert overview.get_attribute(health, "data-health") == "healthy"
    assert group_page.get_attribute(member, "data-status") == "online"
    assert worker_page.get_attribute(head, "data-status") == "online"

    emulator.start_scenario("agent_stopped", worker.name, 60)
    emulator.clock.advance(12 * 60)
    poll_and_refresh(account, now=emulator.clock.now())
    process_outbox(now=timezone.now())  # the change is stamped with the real clock
    deadline = time.monotonic() + ONE_POLL_MS / 1000
    worker.refresh_from_db()
    assert worker.status == WorkerStatus.OFFLINE, worker.status_reason

    overview.wait_for_selector(f'{health}[data-health="degraded"]', timeout=_remaining_ms(deadline))
    group_page.wait_for_selector(f'{member}[data-status="offline"]', timeout=_remaining_ms(deadline))
    worker_page.wait_for_selector(f'{head}[data-status="offline"]', timeout=_remaining_ms(deadline))

    for page in (overview, group_page, worker_page):
        assert page.evaluate(MARKER) == "kept", f"{page.url} was reloaded"
    # The worker page names the cause and its fix, and shows the open alert with an Acknowledge button.
    head_text = worker_page.text_content(head)
    assert "Probable cause" in head_text and "Fix:" in head_text
    worker_page.wait_for_selector(f'{head} .alert-item[data-acknowledged="no"] button:has-text("Acknowledge")',
                                  timeout=_remaining_ms(deadline + REFRESH))
    # The overview lists the open alert too.
    overview.wait_for_selector('.alert-item[data-acknowledged="no"]', timeout=_remaining_ms(deadline + REFRESH))
    watch.screenshots("live-overview-after-agent-stopped")
    watch.assert_clean()


def test_it_updates_at_once_when_the_tab_regains_focus(login_cookie):
    fleet = build_fleet(now=timezone.now(), groups=3, workers_per_group=2, poll_age_seconds=2)
    page = login_cookie.page
    page.goto(f"{login_cookie.origin}/?refresh=300", wait_until="domcontentloaded")
    page.wait_for_function("() => !!(window.hrw && window.hrw.live)")
    page.evaluate(f"{MARKER} = 'kept'")
    victim = fleet.groups[1]
    cell = f'td[data-group-id="{victim.pk}"]'
    assert page.get_attribute(cell, "data-health") == "healthy"

    victim.workers.update(status=WorkerStatus.OFFLINE.value)
    page.evaluate("window.dispatchEvent(new Event('focus'))")

    page.wait_for_selector(f'{cell}[data-health="down"]', timeout=8_000)
    assert page.evaluate(MARKER) == "kept"
    login_cookie.assert_clean()


def test_ages_tick_in_the_browser(login_cookie):
    build_fleet(now=timezone.now(), groups=2, workers_per_group=1, poll_age_seconds=5)
    page = login_cookie.page
    page.goto(f"{login_cookie.origin}/?refresh=300", wait_until="domcontentloaded")
    age = page.locator('[data-live-part="freshness"] .live-age').first
    first = age.text_content()
    assert first.startswith("Automation data ") and first.endswith(" old"), first

    page.wait_for_function(
        "first => document.querySelector('[data-live-part=\"freshness\"] .live-age').textContent !== first", arg=first, timeout=5_000
    )
    login_cookie.assert_clean()


def test_an_acknowledged_alert_is_marked_on_the_overview_and_the_alerts_page_updates(login_cookie):
    from workers.models import Alert, AlertMember

    now = timezone.now()
    fleet = build_fleet(now=now, groups=2, workers_per_group=2, poll_age_seconds=2)
    worker = fleet.workers[0]
    alert = Alert.objects.create(kind="worker_down", group=fleet.groups[0], account=fleet.account, title="DOWN one worker",
                                 opened_at=now - timedelta(minutes=5))
    AlertMember.objects.create(alert=alert, worker=worker, down_at=now - timedelta(minutes=5))
    overview = _open(login_cookie.context, login_cookie.origin, "/", page=login_cookie.page)
    alerts_page = _open(login_cookie.context, login_cookie.origin, "/alerts/")
    assert overview.get_attribute(f'.alert-item[data-alert-id="{alert.pk}"]', "data-acknowledged") == "no"

    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=timezone.now())
    second = Alert.objects.create(kind="worker_down", group=fleet.groups[1], account=fleet.account, title="DOWN another",
                                  opened_at=timezone.now())

    item = overview.wait_for_selector(f'.alert-item.is-acknowledged[data-alert-id="{alert.pk}"]', timeout=ONE_POLL_MS)
    assert "Acknowledged" in item.text_content()
    alerts_page.wait_for_selector(f'[data-live-part="alert-lists"] :text("{second.title}")', timeout=ONE_POLL_MS)
    assert alerts_page.evaluate(MARKER) == "kept"
    login_cookie.assert_clean()
