"""The live pages' server side: ?partial=1 answers (never cached), ticking ages, open and acknowledged
alerts on the overview, the worker page's alert with its Acknowledge button, workers under pressure,
and CPU/memory of an offline worker shown as last known. Frozen clock (``now``)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.fixtures.web import build_fleet, make_account, record_polls
from workers.models import Alert, AlertMember, HybridWorker, WorkerStatus

pytestmark = pytest.mark.django_db


def _fleet(now):
    account = make_account()
    fleet = build_fleet(groups=2, workers_per_group=2, now=now, account=account)
    record_polls(account, at=now - timedelta(seconds=20))
    return fleet


def _down_alert(fleet, now, *, acknowledged: bool = False) -> Alert:
    worker = fleet.workers[0]
    alert = Alert.objects.create(kind="worker_down", group=fleet.groups[0], account=fleet.account, title="DOWN <b>w</b>",
                                 opened_at=now - timedelta(minutes=6), acknowledged_at=now - timedelta(minutes=1) if acknowledged else None)
    AlertMember.objects.create(alert=alert, worker=worker, down_at=now - timedelta(minutes=6))
    return alert


@pytest.mark.parametrize("path", ["/", "/alerts/", "group", "worker"])
def test_a_partial_answer_is_the_page_never_cached(client_in, now, path):
    fleet = _fleet(now)
    path = {"group": f"/groups/{fleet.groups[0].pk}/", "worker": f"/workers/{fleet.workers[0].pk}/"}.get(path, path)

    response = client_in.get(path, {"partial": "1", "refresh": "3"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert 'data-live-part="' in response.content.decode()


def test_ages_carry_their_timestamp_and_the_servers_clock(client_in, now):
    _fleet(now)
    body = client_in.get("/").content.decode()
    assert ('<span class="live-age" data-timestamp="2026-11-20T11:59:40Z" data-now="2026-11-20T12:00:00Z" '
            'data-prefix="Automation data " data-suffix=" old" title="2026-11-20 11:59:40 UTC">Automation data 20 s old</span>') in body


def test_the_overview_lists_open_alerts_and_marks_acknowledged_ones(client_in, now):
    fleet = _fleet(now)
    acked = _down_alert(fleet, now, acknowledged=True)
    body = client_in.get("/").content.decode()
    item = re.search(rf'<li class="alert-item is-acknowledged" data-alert-id="{acked.pk}" data-acknowledged="yes">.*?</li>', body, re.S)
    assert item and "Acknowledged" in item.group(0) and "started <span" in item.group(0)
    assert "DOWN &lt;b&gt;w&lt;/b&gt;" in body and "DOWN <b>w</b>" not in body


def test_the_worker_page_shows_its_open_alert_with_an_acknowledge_button_for_operators(client_in, user, now):
    from dashboard.roles import set_role

    fleet = _fleet(now)
    alert = _down_alert(fleet, now)
    viewer = client_in.get(f"/workers/{fleet.workers[0].pk}/").content.decode()
    assert 'data-acknowledged="no"' in viewer and "/acknowledge/" not in viewer
    set_role(user, "operator")
    body = client_in.get(f"/workers/{fleet.workers[0].pk}/").content.decode()
    assert f'action="/alerts/{alert.pk}/acknowledge/"' in body
    other = client_in.get(f"/workers/{fleet.workers[1].pk}/").content.decode()
    assert "No open alert for this worker." in other and "/acknowledge/" not in other


def test_the_overview_flags_workers_under_pressure_now(client_in, now):
    fleet = _fleet(now)
    hot, stale_hot = fleet.workers[0], fleet.workers[1]
    HybridWorker.objects.filter(pk=hot.pk).update(cpu_pct=87.0, mem_pct=40.0, utilization_at=now - timedelta(minutes=2))
    HybridWorker.objects.filter(pk=stale_hot.pk).update(cpu_pct=95.0, mem_pct=40.0, utilization_at=now - timedelta(hours=2))
    body = client_in.get("/").content.decode()
    assert "1 worker at high CPU or memory now" in body
    assert f'<li data-worker-id="{hot.pk}">' in body and f'data-worker-id="{stale_hot.pk}"' not in body


def test_an_offline_workers_figures_are_last_known_with_their_age(client_in, now):
    fleet = _fleet(now)
    w = fleet.workers[0]
    HybridWorker.objects.filter(pk=w.pk).update(status=WorkerStatus.OFFLINE, cpu_pct=35.0, mem_pct=50.0,
                                                utilization_at=now - timedelta(minutes=6))
    group_page = client_in.get(f"/groups/{w.group_id}/").content.decode()
    worker_page = client_in.get(f"/workers/{w.pk}/").content.decode()
    assert "now 35 %" not in group_page
    assert re.search(r'last known 35 %, <span class="live-age"[^>]*>6 min old</span>', group_page)
    assert "<strong>last known</strong>: sample" in worker_page and "worker offline" in worker_page


def test_acknowledging_on_the_worker_page_comes_back_to_it(client_in, user, now):
    from dashboard.roles import set_role

    set_role(user, "operator")
    fleet = _fleet(now)
    alert = _down_alert(fleet, now)
    page = f"/workers/{fleet.workers[0].pk}/"

    response = client_in.post(f"/alerts/{alert.pk}/acknowledge/", {"next": page}, follow=True)

    assert response.redirect_chain == [(page, 302)]
    body = response.content.decode()
    assert "Alert acknowledged" in body and 'data-acknowledged="yes"' in body
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "javascript:alert(1)", ""])
def test_acknowledging_never_redirects_off_site(client_in, user, now, target):
    from dashboard.roles import set_role

    set_role(user, "operator")
    alert = _down_alert(_fleet(now), now)

    response = client_in.post(f"/alerts/{alert.pk}/acknowledge/", {"next": target})

    assert response.status_code == 302 and response["Location"] == "/alerts/"
