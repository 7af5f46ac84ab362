"""Create Automation accounts to poll: from the environment (HRW_* settings) or an emulator connection file.

Credentials never enter the database. From the environment, azure-identity reads ``AZURE_TENANT_ID``,
``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET`` itself; from a connection file, only the file's path is
stored (``credential_file``) and the adapter reads the secret from it at poll time.
"""
from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from workers.azure.connection import ConnectionFileError, read_connection_file, resolve_ca_path
from workers.models import AutomationAccount


class AccountConfigError(ValueError):
    """A connection file or the HRW_* settings cannot describe an account."""


def ensure_account_from_env() -> AutomationAccount | None:
    """Create or update the account named by HRW_SUBSCRIPTION_ID/HRW_RESOURCE_GROUP/HRW_AUTOMATION_ACCOUNT.

    Returns None when those settings are not all set. Safe to run at every start: the account is
    keyed by its Automation account name, and only the fields from settings are rewritten.
    """
    required = (settings.HRW_SUBSCRIPTION_ID, settings.HRW_RESOURCE_GROUP, settings.HRW_AUTOMATION_ACCOUNT)
    if not all(required):
        return None
    defaults = {
        "subscription_id": settings.HRW_SUBSCRIPTION_ID,
        "resource_group": settings.HRW_RESOURCE_GROUP,
        "automation_account": settings.HRW_AUTOMATION_ACCOUNT,
        "workspace_id": settings.HRW_WORKSPACE_ID,
        "arm_endpoint": settings.HRW_ARM_ENDPOINT,
        "logs_endpoint": settings.HRW_LOGS_ENDPOINT,
        "logs_audience": settings.HRW_LOGS_AUDIENCE,
        "authority_host": os.environ.get("AZURE_AUTHORITY_HOST", ""),
        "ca_bundle": settings.HRW_CA_BUNDLE,
    }
    account, _ = AutomationAccount.objects.update_or_create(name=settings.HRW_AUTOMATION_ACCOUNT, defaults=defaults)
    return account


def add_account_from_connection_file(path: str | Path, name: str | None = None) -> tuple[AutomationAccount, bool]:
    """Create or update an account from an emulator connection file; returns (account, created).

    The file's path (made absolute) is stored so the adapter can read the client secret from it;
    the secret itself is not copied into the database. Safe to run twice: keyed by ``name``
    (default: the file's automation_account).
    """
    path = Path(path).expanduser().resolve()
    try:
        data = read_connection_file(path)
    except ConnectionFileError as exc:
        raise AccountConfigError(str(exc)) from exc
    missing = [k for k in ("subscription_id", "resource_group", "automation_account", "arm_endpoint") if not data.get(k)]
    if missing:
        raise AccountConfigError(f"{path} lacks {', '.join(missing)}")
    ca = resolve_ca_path(str(data.get("ca_bundle") or ""), path.parent)
    label = (name or str(data["automation_account"])).strip()
    if not label:
        raise AccountConfigError("the account name must not be empty")
    defaults = {
        "subscription_id": str(data["subscription_id"]),
        "resource_group": str(data["resource_group"]),
        "automation_account": str(data["automation_account"]),
        "workspace_id": str(data.get("workspace_id") or ""),
        "arm_endpoint": str(data["arm_endpoint"]),
        "logs_endpoint": str(data.get("logs_endpoint") or settings.HRW_LOGS_ENDPOINT),
        "logs_audience": str(data.get("logs_audience") or settings.HRW_LOGS_AUDIENCE),
        "authority_host": str(data.get("authority_host") or ""),
        "ca_bundle": ca,
        "credential_file": str(path),
        "enabled": True,
    }
    for field_name, value in defaults.items():
        limit = getattr(AutomationAccount._meta.get_field(field_name), "max_length", None)
        if limit and len(str(value)) > limit:
            raise AccountConfigError(f"{field_name} is longer than {limit} characters")
    return AutomationAccount.objects.update_or_create(name=label[:100], defaults=defaults)
