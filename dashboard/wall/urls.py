"""Routes for the NOC wall (included from dashboard/urls.py)."""
from django.urls import path

from dashboard.wall import views as views_wall

urlpatterns = [
    path("wall/", views_wall.wall, name="wall"),
    path("api/v1/wall", views_wall.wall_data, name="wall-data"),
]
