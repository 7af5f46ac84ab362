from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from dashboard.roles import on_post_migrate

        # The roles (viewer, operator, admin groups) are made after every migrate; idempotent.
        post_migrate.connect(on_post_migrate, dispatch_uid="dashboard.roles")
