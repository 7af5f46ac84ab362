"""URL routes for the alerts pages (included from dashboard/urls.py). Every view is a page_view."""
from django.urls import path

from dashboard.alerts import views as views_alerts

urlpatterns = [
    path("alerts/", views_alerts.alerts, name="alerts"),
    path("alerts/<int:alert_id>/acknowledge/", views_alerts.acknowledge_alert, name="alert-acknowledge"),
    path("alerts/notifications/<int:notification_id>/", views_alerts.notification_detail, name="alert-notification"),
    path("alerts/notifications/<int:notification_id>/retry/", views_alerts.retry_notification, name="alert-notification-retry"),
    path("alerts/maintenance/", views_alerts.create_window, name="maintenance-create"),
    path("alerts/maintenance/<int:window_id>/delete/", views_alerts.delete_window, name="maintenance-delete"),
    path("alerts/mail/<str:name>", views_alerts.mail_file, name="alert-mail-file"),
]
