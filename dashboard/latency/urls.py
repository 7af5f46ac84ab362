"""Routes for the latency and timeout pages and API (included from dashboard/urls.py)."""
from django.urls import path

from dashboard.latency import views

urlpatterns = [
    path("latency/", views.latency_page, name="latency"),
    path("timeouts/", views.timeouts_page, name="timeouts"),
    path("timeouts/thresholds/", views.thresholds_page, name="thresholds"),
    path("api/v1/jobs/latency", views.api_latency, name="api-latency"),
]
