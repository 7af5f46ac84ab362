"""Read-only API tokens. Only a SHA-256 hash of each token is stored, never the token itself."""
from __future__ import annotations

from django.db import models


class TokenScope(models.TextChoices):
    READ = "read", "Read only"


class ApiToken(models.Model):
    """A bearer token for the JSON API and for display pages (``?token=``, e.g. a NOC wall).

    The token is shown once when issued (``manage.py issue_token``); we keep its SHA-256 hash, which
    is looked up directly (an indexed equality on the hash, so no per-character timing leaks the
    secret), and a short prefix so people can tell tokens apart in the admin.
    """

    name = models.CharField(max_length=100, help_text="Who or what uses it, e.g. 'NOC wall 2nd floor'.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 hex of the token.")
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters of the token, for display.")
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set to revoke; a revoked token is refused.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Role(models.TextChoices):
    """The three roles, each a Django group of the same name (made by dashboard.roles.ensure_roles)."""

    VIEWER = "viewer", "Viewer: reads every page"
    OPERATOR = "operator", "Operator: also acknowledges alerts, edits maintenance windows and thresholds"
    ADMIN = "admin", "Admin: also manages users, tokens and accounts in the admin"


class DashboardPermission(models.Model):
    """No table: the holder of the dashboard's own permissions, the ones the operator role grants."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("acknowledge_alert", "Can acknowledge alerts"),
            ("retry_notification", "Can retry a failed alert email"),
            ("manage_maintenance", "Can create and delete maintenance windows"),
            ("manage_thresholds", "Can set and remove runbook time thresholds"),
        ]
