"""URL routes for the alerts pages and API (included from dashboard/urls.py)."""
from django.urls import path  # noqa: F401

urlpatterns: list = []
