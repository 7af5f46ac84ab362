"""The alerts page: open and recent alerts, notifications (failures visible), maintenance windows,
and where emails go. Views validate, call a selector or a service, and render."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from dashboard.alerts.forms import AlertFilterForm, MaintenanceWindowForm
from dashboard.auth import page_view, requires
from workers.alerting import selectors
from workers.alerting.maintenance import create_maintenance_window, delete_maintenance_window
from workers.alerting.reminders import acknowledge
from workers.alerting.sending import retry_now


def _page(request: HttpRequest, *, maintenance_form: MaintenanceWindowForm | None = None, status: int = 200) -> HttpResponse:
    now = timezone.now()
    choices = selectors.group_choices()
    filters = AlertFilterForm(request.GET or None, group_choices=choices)
    lists = None
    since = selectors.parse_window("7d", now=now)
    if request.GET and not filters.is_valid():
        status = 400
    else:
        data: dict[str, Any] = filters.cleaned_data if request.GET else {"group": None, "window": "7d"}
        since = selectors.parse_window(data["window"], now=now)
        lists = selectors.alert_lists(now=now, since=since, group_id=data["group"])
    context = {
        "nav_section": "alerts",
        "now": now,
        "filters": filters,
        "lists": lists,
        "notifications": selectors.notifications(since=since),
        "failed_count": selectors.failed_count(),
        "windows": selectors.maintenance_rows(now=now),
        "maintenance_form": maintenance_form or MaintenanceWindowForm(group_choices=choices),
        "destination": selectors.email_destination(),
        "mail_files": selectors.mail_files(),
        "group_wait": settings.ALERT_GROUP_WAIT_SECONDS,
        "reminder_hours": settings.ALERT_REMINDER_HOURS,
        "flap": (settings.FLAP_TRANSITIONS, settings.FLAP_WINDOW_MINUTES, settings.FLAP_STABLE_MINUTES),
    }
    response = render(request, "alerts/alerts.html", context, status=status)
    if request.GET.get("partial") == "1":  # static/js/live.js re-fetching the page: never cached
        response["Cache-Control"] = "no-store"
    return response


@page_view
def alerts(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return _page(request)


@page_view
@requires("dashboard.acknowledge_alert")
def acknowledge_alert(request: HttpRequest, alert_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if acknowledge(alert_id=alert_id, user=request.user, now=timezone.now()):
        messages.success(request, "Alert acknowledged: reminders stopped.")
    else:
        messages.info(request, "That alert is already acknowledged or resolved.")
    # Back to the page the button was on (the worker page posts ``next``), only ever a local path.
    back = request.POST.get("next", "")
    if back.startswith("/") and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("alerts")


@page_view
@requires("dashboard.retry_notification")
def retry_notification(request: HttpRequest, notification_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if retry_now(notification_id=notification_id, now=timezone.now()):
        messages.success(request, "The email will be retried on the next send (within seconds).")
    else:
        messages.info(request, "Only a failed email can be retried.")
    return redirect("alerts")


@page_view
@requires("dashboard.manage_maintenance")
def create_window(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = MaintenanceWindowForm(request.POST, group_choices=selectors.group_choices())
    if not form.is_valid():
        return _page(request, maintenance_form=form, status=400)
    data = form.cleaned_data
    weekly = data["kind"] == "weekly"
    create_maintenance_window(
        reason=data["reason"],
        group=data["group_obj"],
        worker=data["worker_obj"],
        starts_at=None if weekly else data["starts_at"],
        ends_at=None if weekly else data["ends_at"],
        weekdays=tuple(sorted(int(d) for d in data["weekdays"])) if weekly else (),
        start_time=data["start_time"] if weekly else None,
        duration_minutes=data["duration_minutes"] if weekly else None,
        created_by=request.user,
    )
    messages.success(request, "Maintenance window saved: alerts for its target are held while it is active.")
    return redirect("alerts")


@page_view
@requires("dashboard.manage_maintenance")
def delete_window(request: HttpRequest, window_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if delete_maintenance_window(window_id=window_id):
        messages.success(request, "Maintenance window deleted; held alerts go out on the next check if still down.")
    else:
        messages.info(request, "That maintenance window was already deleted.")
    return redirect("alerts")


@page_view
def notification_detail(request: HttpRequest, notification_id: int) -> HttpResponse:
    note = selectors.notification(notification_id)
    if note is None:
        raise Http404("No such notification")
    return render(request, "alerts/notification.html", {"nav_section": "alerts", "note": note})


@page_view
def mail_file(request: HttpRequest, name: str) -> HttpResponse:
    text = selectors.mail_file_text(name)
    if text is None:
        raise Http404("No such email file")
    return render(request, "alerts/mail_file.html", {"nav_section": "alerts", "name": name, "text": text})
