"""Root URL configuration. Every route needs a login or a token, except /healthz and the login page
(a test walks this configuration to prove it)."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("dashboard.urls_alerts")),
    path("", include("dashboard.urls_analytics")),
]
