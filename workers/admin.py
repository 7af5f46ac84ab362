"""Admin for the fleet: accounts (no secret fields exist), groups, workers, jobs, poll runs, status changes.

Data that comes from Azure is read-only here: polls own it, and a hand edit would be overwritten.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from workers.models import AutomationAccount, HybridWorker, Job, PollRun, StatusChange, WorkerGroup


@admin.register(AutomationAccount)
class AutomationAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "automation_account", "resource_group", "workspace_id", "enabled", "jobs_watermark")
    list_filter = ("enabled",)
    search_fields = ("name", "automation_account", "resource_group", "subscription_id")
    readonly_fields = ("jobs_watermark", "heartbeat_watermark", "perf_watermark", "events_watermark", "created_at")


@admin.register(WorkerGroup)
class WorkerGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "group_type", "grace_seconds", "last_listed_at", "removed_at")
    list_filter = ("account", "group_type")
    search_fields = ("name",)
    readonly_fields = ("account", "azure_id", "name", "group_type", "first_seen_at", "last_listed_at", "removed_at")
    fields = ("account", "name", "azure_id", "group_type", "grace_seconds", "alert_recipients", "first_seen_at", "last_listed_at", "removed_at")


@admin.register(HybridWorker)
class HybridWorkerAdmin(admin.ModelAdmin):
    list_display = ("name", "group", "status", "worker_type", "last_seen_at", "last_heartbeat_at", "cpu_pct", "mem_pct", "removed_at")
    list_filter = ("status", "worker_type", "group__account")
    search_fields = ("name", "azure_id", "ip")
    list_select_related = ("group",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("job_id", "runbook", "status", "run_on", "created_at", "queue_seconds", "duration_seconds")
    list_filter = ("status", "account")
    search_fields = ("job_id", "runbook", "run_on")
    date_hierarchy = "created_at"
    show_full_result_count = False  # a COUNT(*) over millions of jobs on every page is not worth it

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(PollRun)
class PollRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "account", "kind", "scope", "ok", "rows", "duration_ms", "error")
    list_filter = ("ok", "kind", "account")
    search_fields = ("scope", "error")
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "worker", "old_status", "new_status", "reason", "processed_at")
    list_filter = ("new_status",)
    list_select_related = ("worker",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
