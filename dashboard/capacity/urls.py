"""Routes for the correlation and capacity pages and API (included from dashboard/urls.py)."""
from django.urls import path

from dashboard.capacity import views

urlpatterns = [
    path("correlation/", views.correlation, name="correlation"),
    path("capacity/", views.capacity, name="capacity"),
    path("capacity/report/", views.capacity_report, name="capacity-report"),
    path("api/v1/correlations", views.api_correlations, name="api-correlations"),
]
