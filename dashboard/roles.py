"""Roles as Django groups: viewer, operator, admin (dashboard.models.Role).

- **viewer** reads every page and the API; no permission at all (any logged-in user reads).
- **operator** also changes state: acknowledges alerts, retries a failed email, creates and deletes
  maintenance windows (which hold alerts), sets runbook thresholds (``OPERATOR_PERMISSIONS``).
- **admin** also runs the Django admin: users and groups, API tokens, accounts and groups (every
  permission of the auth, dashboard, workers and axes apps). A user also needs ``is_staff`` to
  open the admin; ``manage.py add_user NAME --role admin`` sets it.

``ensure_roles`` runs after every ``migrate`` (post_migrate, connected in dashboard.apps): it creates
the groups and adds their permissions, and is idempotent. It only adds: permissions an administrator
gave a group by hand are kept.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from dashboard.models import Role

OPERATOR_PERMISSIONS = (
    "dashboard.acknowledge_alert",
    "dashboard.retry_notification",
    "dashboard.manage_maintenance",
    "dashboard.manage_thresholds",
)
ADMIN_APPS = ("auth", "dashboard", "workers", "axes")


def _permissions(codes: tuple[str, ...]) -> list[Permission]:
    query = Q(pk__in=[])
    for code in codes:
        app_label, _, codename = code.partition(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return list(Permission.objects.filter(query))


def ensure_roles(**_kwargs: Any) -> None:
    """Create the three groups and give them their permissions (safe to run any number of times)."""
    operator = _permissions(OPERATOR_PERMISSIONS)
    admin = list(Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))
    for role, perms in ((Role.VIEWER, []), (Role.OPERATOR, operator), (Role.ADMIN, admin)):
        group, _created = Group.objects.get_or_create(name=role.value)
        if perms:
            group.permissions.add(*perms)


def on_post_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate receiver: after the dashboard app migrated (its permissions exist by then)."""
    if getattr(sender, "name", None) == "dashboard":
        ensure_roles(**kwargs)


def set_role(user: Any, role: str) -> None:
    """Put ``user`` in exactly one role group (the other role groups are left); admins get is_staff."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    ensure_roles()
    user.groups.remove(*Group.objects.filter(name__in=[r for r in Role.values if r != role]))
    user.groups.add(Group.objects.get(name=role))
    is_staff = role == Role.ADMIN or user.is_superuser
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])
