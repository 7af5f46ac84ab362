"""URL routes for the analytics pages and API (included from dashboard/urls.py)."""
from django.urls import path  # noqa: F401

from dashboard import views_capacity

urlpatterns: list = []

urlpatterns += [
    path("correlation/", views_capacity.correlation, name="correlation"),
    path("capacity/", views_capacity.capacity, name="capacity"),
    path("capacity/report/", views_capacity.capacity_report, name="capacity-report"),
    path("api/v1/correlations", views_capacity.api_correlations, name="api-correlations"),
]

from dashboard import views_latency  # noqa: E402

urlpatterns += [
    path("latency/", views_latency.latency_page, name="latency"),
    path("timeouts/", views_latency.timeouts_page, name="timeouts"),
    path("timeouts/thresholds/", views_latency.thresholds_page, name="thresholds"),
    path("api/v1/jobs/latency", views_latency.api_latency, name="api-latency"),
]
