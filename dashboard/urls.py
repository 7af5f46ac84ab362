"""Root URL configuration. Every route needs a login or a token, except /healthz and the login page
(tests/web/test_auth_urls.py walks this configuration to prove it)."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.fleet import api, job_views, search_views, views

# An exception outside a view: 503 when the database is down, JSON under /api/ (dashboard/errors.py).
handler500 = "dashboard.errors.server_error"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("groups/<int:group_id>/", views.group_detail, name="group-detail"),
    path("workers/<int:worker_id>/", views.worker_detail, name="worker-detail"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs.csv", job_views.jobs_csv, name="jobs-csv"),
    path("jobs/<str:job_id>/", job_views.job_detail, name="job-detail"),
    path("overview.csv", job_views.overview_csv, name="overview-csv"),
    path("search/", search_views.search, name="search"),
    path("api/v1/groups", api.groups, name="api-groups"),
    path("api/v1/workers", api.workers, name="api-workers"),
    path("api/v1/jobs", api.jobs, name="api-jobs"),
    path("metrics", api.metrics, name="metrics"),
    path("healthz", api.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("dashboard.alerts.urls")),
    path("", include("dashboard.latency.urls")),
    path("", include("dashboard.capacity.urls")),
    path("", include("dashboard.wall.urls")),
]
