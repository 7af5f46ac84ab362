"""The fleet as we poll it: accounts, groups, workers, jobs, utilization, signals, polls, and the log of
status changes.

Azure ids are natural keys (lower-cased ARM ids, job GUIDs). Each worker keeps its current status
plus a precomputed deadline; every status change is a ``StatusChange`` row, written once through a
conditional UPDATE by ``workers.fleet.status``; that table is also the alert outbox.
"""
from __future__ import annotations

from django.db import models

from workers.rules import signals
from workers.rules.health import Status


class AutomationAccount(models.Model):
    """An Automation account to poll and the Log Analytics workspace its workers report to.

    Credentials never live here: they come from the environment (azure-identity's
    ``DefaultAzureCredential``) or, for the local emulator, from ``credential_file`` (a connection
    JSON file on disk, outside the repository).
    """

    name = models.CharField(max_length=100, unique=True, help_text="Display label.")
    subscription_id = models.CharField(max_length=64)
    resource_group = models.CharField(max_length=90)
    automation_account = models.CharField(max_length=100)
    workspace_id = models.CharField(max_length=64, blank=True, help_text="Log Analytics workspace GUID; blank = no Log Analytics polling.")
    arm_endpoint = models.URLField(default="https://management.azure.com")
    logs_endpoint = models.URLField(default="https://api.loganalytics.io")
    logs_audience = models.URLField(default="https://api.loganalytics.io")
    authority_host = models.URLField(blank=True, help_text="Entra authority; blank = azure-identity's default / AZURE_AUTHORITY_HOST.")
    ca_bundle = models.CharField(max_length=500, blank=True, help_text="Path to a CA bundle (PEM) to trust; blank = system CAs.")
    credential_file = models.CharField(
        max_length=500, blank=True,
        help_text="Path to an emulator connection file holding tenant/client/secret; blank = credentials from the environment.",
    )
    enabled = models.BooleanField(default=True)
    # Watermarks: each poll reads from here minus the overlap window, then advances them.
    jobs_watermark = models.DateTimeField(null=True, blank=True)
    heartbeat_watermark = models.DateTimeField(null=True, blank=True)
    perf_watermark = models.DateTimeField(null=True, blank=True)
    events_watermark = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkerGroup(models.Model):
    account = models.ForeignKey(AutomationAccount, on_delete=models.CASCADE, related_name="groups")
    azure_id = models.CharField(max_length=600, unique=True, help_text="Lower-cased ARM resource id.")
    name = models.CharField(max_length=260)
    group_type = models.CharField(max_length=32, default="User", help_text="User or System (an open set).")
    grace_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Alert grace period override; blank = global default.")
    alert_recipients = models.TextField(blank=True, help_text="Comma-separated; blank = ALERT_RECIPIENTS.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_listed_at = models.DateTimeField(null=True, blank=True, help_text="Last poll that listed this group.")
    removed_at = models.DateTimeField(null=True, blank=True, help_text="Set when a poll no longer lists it.")

    class Meta:
        ordering = ["account__name", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="uniq_group_per_account")]

    def __str__(self) -> str:
        return self.name


class WorkerStatus(models.TextChoices):
    """The stored status; the values are the rules' (``workers.rules.health.Status``)."""

    ONLINE = Status.ONLINE.value, "Online"
    LATE = Status.LATE.value, "Late"
    OFFLINE = Status.OFFLINE.value, "Offline"
    NEVER = Status.NEVER.value, "Never reported"
    UNKNOWN = Status.UNKNOWN.value, "Unknown"


class HybridWorker(models.Model):
    group = models.ForeignKey(WorkerGroup, on_delete=models.CASCADE, related_name="workers")
    azure_id = models.CharField(max_length=700, unique=True, help_text="Lower-cased ARM resource id.")
    worker_id = models.CharField(max_length=64, help_text="The worker resource name (a GUID).")
    name = models.CharField(max_length=260, db_index=True, help_text="workerName: the machine name; joins Heartbeat.Computer.")
    ip = models.CharField(max_length=64, blank=True)
    worker_type = models.CharField(max_length=32, blank=True, help_text="HybridV1 or HybridV2 (open set).")
    vm_resource_id = models.CharField(max_length=700, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="Automation lastSeenDateTime.")
    # From Log Analytics Heartbeat.
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # From Azure Monitor's HybridWorkerPing metric: the start of the latest minute with pings.
    last_ping_at = models.DateTimeField(null=True, blank=True, help_text="Azure Monitor HybridWorkerPing.")
    agent_version = models.CharField(max_length=64, blank=True)
    agent_category = models.CharField(max_length=64, blank=True)
    os_type = models.CharField(max_length=32, blank=True)
    computer_ip = models.CharField(max_length=64, blank=True)
    # Latest utilization (percent) and when it was sampled.
    cpu_pct = models.FloatField(null=True, blank=True)
    mem_pct = models.FloatField(null=True, blank=True)
    utilization_at = models.DateTimeField(null=True, blank=True)
    # TLS interception (event 4502) seen in the last poll window.
    event_4502_count = models.PositiveIntegerField(default=0)
    last_4502_at = models.DateTimeField(null=True, blank=True)
    # The machine behind a V2 worker (its vmResourceId), read from ARM by the slow machine poll:
    # an Arc server's status (Connected / Disconnected / Expired / Error) or an Azure VM's power
    # state (running / stopped / deallocated / ...), and the Hybrid Worker extension's
    # provisioning state ("" = not looked at; "Missing" = no Hybrid Worker extension found).
    machine_status = models.CharField(max_length=32, blank=True)
    machine_status_changed_at = models.DateTimeField(null=True, blank=True)
    extension_state = models.CharField(max_length=32, blank=True)
    extension_message = models.CharField(max_length=300, blank=True)
    machine_checked_at = models.DateTimeField(null=True, blank=True)
    # Current state, changed only through a conditional UPDATE (services.status).
    status = models.CharField(max_length=16, choices=WorkerStatus.choices, default=WorkerStatus.UNKNOWN)
    status_reason = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    alert_after = models.DateTimeField(null=True, blank=True, help_text="When the worker is due to be declared down.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            # Group pages and the overview aggregate members by status.
            models.Index(fields=["group", "status"], name="worker_group_status"),
            # Outage detection scans workers whose deadline has passed.
            models.Index(fields=["alert_after"], name="worker_alert_after"),
        ]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    """An Automation job. Status is an open set: unknown strings are stored as they come."""

    account = models.ForeignKey(AutomationAccount, on_delete=models.CASCADE, related_name="jobs")
    job_id = models.CharField(max_length=64)
    runbook = models.CharField(max_length=260, blank=True)
    status = models.CharField(max_length=64)
    run_on = models.CharField(max_length=260, blank=True, help_text="Hybrid worker group name; blank = Azure sandbox.")
    group = models.ForeignKey(WorkerGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    # Azure does not say which member ran a job; set only when it is certain (single-member group).
    worker = models.ForeignKey(HybridWorker, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    started_by = models.CharField(max_length=260, blank=True)
    provisioning_state = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(help_text="creationTime: queued.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_modified_at = models.DateTimeField(null=True, blank=True)
    queue_seconds = models.FloatField(null=True, blank=True, help_text="start - creation.")
    duration_seconds = models.FloatField(null=True, blank=True, help_text="end - start.")
    exception = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["account", "job_id"], name="uniq_job_per_account")]
        indexes = [
            # Overview and group pages: a group's jobs in a time window.
            models.Index(fields=["group", "created_at"], name="job_group_created"),
            # Jobs API and timeouts: by status in a time window.
            models.Index(fields=["status", "created_at"], name="job_status_created"),
            # Global recent-jobs lists.
            models.Index(fields=["created_at"], name="job_created"),
            # The overview's 24 h aggregate per group (outcome counts, queue-delay p95) reads only the
            # index on PostgreSQL (an index-only scan); SQLite ignores INCLUDE.
            models.Index(fields=["created_at"], include=["group", "status", "queue_seconds"], name="job_created_cov"),
            # workers.latency.selectors queued_now / over_threshold_now: the few jobs not ended yet.
            models.Index(fields=["created_at"], condition=models.Q(ended_at__isnull=True), name="job_open"),
            # workers.latency.rollups.touched_hours: jobs changed since the last rollup (long jobs end days later).
            models.Index(fields=["last_modified_at"], name="job_last_modified"),
            # workers.latency.selectors.timeouts: jobs over a queue / run threshold in a window (rare rows).
            models.Index(fields=["queue_seconds"], name="job_queue_seconds"),
            models.Index(fields=["duration_seconds"], name="job_duration_seconds"),
        ]

    def __str__(self) -> str:
        return f"{self.runbook} {self.job_id}"


class UtilizationSample(models.Model):
    """One CPU/memory reading per worker per minute (raw; pages read the hourly rollup)."""

    worker = models.ForeignKey(HybridWorker, on_delete=models.CASCADE, related_name="samples")
    ts = models.DateTimeField()
    cpu_pct = models.FloatField(null=True, blank=True)
    mem_pct = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["worker", "ts"], name="uniq_sample_per_minute")]


class UtilizationHourly(models.Model):
    worker = models.ForeignKey(HybridWorker, on_delete=models.CASCADE, related_name="hourly")
    hour = models.DateTimeField()
    cpu_avg = models.FloatField(null=True, blank=True)
    cpu_max = models.FloatField(null=True, blank=True)
    mem_avg = models.FloatField(null=True, blank=True)
    mem_max = models.FloatField(null=True, blank=True)
    samples = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["worker", "hour"], name="uniq_util_hour")]
        indexes = [models.Index(fields=["hour"], name="util_hour")]


class StatusChange(models.Model):
    """A worker status change, written exactly once. Also the alert outbox: the alert sender claims
    rows with ``UPDATE ... WHERE processed_at IS NULL``."""

    worker = models.ForeignKey(HybridWorker, on_delete=models.CASCADE, related_name="changes")
    old_status = models.CharField(max_length=16)
    new_status = models.CharField(max_length=16)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The alert sender's outbox scan.
            models.Index(fields=["processed_at", "created_at"], name="change_outbox"),
        ]


class SignalSource(models.TextChoices):
    """The stored signal name; the values are the rules' (``workers.rules.signals``)."""

    AUTOMATION = signals.AUTOMATION, "Automation lastSeenDateTime"
    HEARTBEAT = signals.HEARTBEAT, "Log Analytics Heartbeat"
    PING = signals.PING, "Azure Monitor HybridWorkerPing"


class SignalSpan(models.Model):
    """A stretch of time in which one liveness signal of a worker was observed without a gap longer
    than the tolerance (that signal's "late" threshold), so a gap between two spans means exactly
    "this signal was late". Written by ``services.signal_spans.record_signal`` on every poll (one
    span extended per worker and source, a new one after a gap); pruned after
    UTILIZATION_RETENTION_DAYS. A single observation is a span of zero length."""

    # No index of its own: the (worker, source, end_at) index below leads with the worker, and every
    # poll rewrites end_at, so each extra index is one more write per worker per poll.
    worker = models.ForeignKey(HybridWorker, on_delete=models.CASCADE, related_name="signal_spans", db_index=False)
    source = models.CharField(max_length=16, choices=SignalSource.choices)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()

    class Meta:
        indexes = [
            # record_signal: the latest span per worker and source; worker_detail: spans in a window.
            models.Index(fields=["worker", "source", "end_at"], name="signalspan_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.worker_id} {self.source} {self.start_at:%Y-%m-%d %H:%M:%S}-{self.end_at:%H:%M:%S}"


class PollKind(models.TextChoices):
    GROUPS = "groups", "Groups"
    WORKERS = "workers", "Workers"
    JOBS = "jobs", "Jobs"
    HEARTBEAT = "heartbeat", "Heartbeat"
    PERF = "perf", "Perf"
    EVENTS = "events", "Events"
    PING = "ping", "HybridWorkerPing"


class PollRun(models.Model):
    """One poll: what, when, how long, how many rows, and why it failed. Freshness comes from here."""

    account = models.ForeignKey(AutomationAccount, on_delete=models.CASCADE, related_name="poll_runs")
    kind = models.CharField(max_length=16, choices=PollKind.choices)
    scope = models.CharField(max_length=260, blank=True, help_text="Group name for per-group polls.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # Freshness: the latest run of each kind per account.
            models.Index(fields=["account", "kind", "started_at"], name="pollrun_latest"),
            # workers.fleet.poll_sweep: the few runs still open (a poll in flight, or one whose process died).
            models.Index(fields=["started_at"], condition=models.Q(finished_at__isnull=True), name="pollrun_open"),
            # The status refresh: our latest successful poll of each group (workers.fleet.selectors.last_looked).
            models.Index(fields=["account", "kind", "scope", "started_at"], condition=models.Q(ok=True), name="pollrun_ok_scope"),
        ]
