"""URL routes for the analytics pages and API (included from dashboard/urls.py)."""
from django.urls import path  # noqa: F401

urlpatterns: list = []
