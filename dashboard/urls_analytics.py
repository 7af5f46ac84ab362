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
