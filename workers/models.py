"""The fleet domain: what we poll, what we store, and the log of changes.

Azure ids are natural keys (lower-cased ARM ids, job GUIDs). Each worker keeps its current status
plus a precomputed deadline; every status change is a ``StatusChange`` row, written once through a
conditional UPDATE by ``services``; that table is also the alert outbox.
"""
from __future__ import annotations

from django.db import models


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
    credential_file = models.CharField(max_length=500, blank=True, help_text="Path to an emulator connection file holding tenant/client/secret; blank = credentials from the environment.")
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
    ONLINE = "online", "Online"
    LATE = "late", "Late"
    OFFLINE = "offline", "Offline"
    NEVER = "never", "Never reported"
    UNKNOWN = "unknown", "Unknown"


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
            # selectors_latency.queued_now / running-over-threshold: the few jobs not ended yet.
            models.Index(fields=["created_at"], condition=models.Q(ended_at__isnull=True), name="job_open"),
            # job_rollups.touched_hours: jobs changed since the last rollup (long jobs end days later).
            models.Index(fields=["last_modified_at"], name="job_last_modified"),
            # selectors_latency timeouts: jobs over a queue / run threshold in a window (rare rows).
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
    AUTOMATION = "automation", "Automation lastSeenDateTime"
    HEARTBEAT = "heartbeat", "Log Analytics Heartbeat"


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
        ]


# --- Alerting (services/alerts.py). An Alert is one incident; a Notification is one email about it.


class AlertKind(models.TextChoices):
    WORKER_DOWN = "worker_down", "Worker down"
    GROUP_ROLLUP = "group_rollup", "Several workers of a group down"
    BLIND = "blind", "Monitoring is blind"
    FLAPPING = "flapping", "Worker flapping"
    PRESSURE = "pressure", "Worker under CPU/memory pressure"


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """One incident: a worker (or several of one group) down, monitoring blind, or a flapping worker.

    ``notify_at`` is the end of the group wait: members that go down before it join this alert, and
    the opening email goes out at that moment unless ``suppressed`` names why it is held
    (maintenance, blind, flapping). ``notified_at`` is set once the opening email is queued; a
    recovery email is sent only for alerts whose opening email went out.
    """

    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    account = models.ForeignKey(AutomationAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    group = models.ForeignKey(WorkerGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    workers = models.ManyToManyField(HybridWorker, through="AlertMember", related_name="alerts", blank=True)
    title = models.CharField(max_length=400, blank=True)
    detail = models.TextField(blank=True, help_text="Why it was opened (blind: the failing source and its error).")
    diagnosis = models.JSONField(default=dict, blank=True, help_text="Snapshot per worker when the alert was sent.")
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    notify_at = models.DateTimeField(null=True, blank=True, help_text="End of the group wait: the opening email is due.")
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When the opening email was queued.")
    suppressed = models.CharField(max_length=32, blank=True, help_text="Why emails are held: maintenance, blind, flapping.")
    acknowledged_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    next_reminder_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            # process_outbox: the open alerts of a group/account, by kind.
            models.Index(fields=["state", "kind"], name="alert_state_kind"),
            # The alerts page: recent alerts, newest first.
            models.Index(fields=["opened_at"], name="alert_opened"),
            # send_reminders: open alerts whose reminder is due.
            models.Index(fields=["next_reminder_at"], name="alert_reminder_due"),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.kind} #{self.pk}"


class AlertMember(models.Model):
    """A worker in an alert, with its own outage span (a rollup resolves when every member is back)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="members")
    worker = models.ForeignKey(HybridWorker, on_delete=models.CASCADE, related_name="alert_memberships")
    down_at = models.DateTimeField()
    recovered_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["down_at", "worker__name"]
        constraints = [models.UniqueConstraint(fields=["alert", "worker"], name="uniq_alert_member")]
        indexes = [
            # process_outbox: the open membership of a worker that just recovered.
            models.Index(fields=["worker", "recovered_at"], name="alertmember_open"),
        ]


class NotificationKind(models.TextChoices):
    ALERT = "alert", "Alert"
    RECOVERY = "recovery", "Recovery"
    REMINDER = "reminder", "Reminder"
    TEST = "test", "Test"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    """One email, rendered when queued so a retry sends the same text.

    ``dedupe_key`` (unique) makes queuing idempotent; the sender claims a row with a conditional
    UPDATE on (status, attempts) before talking to SMTP, so two senders never send it twice.
    A failed send keeps its error and is retried at ``next_attempt_at`` until the attempt limit.
    """

    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    recipients = models.TextField(blank=True, help_text="Comma-separated.")
    subject = models.CharField(max_length=400)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Null = nothing more to try.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # send_pending: rows due for a (re)try.
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            # The alerts page: recent notifications.
            models.Index(fields=["created_at"], name="notification_created"),
        ]

    def __str__(self) -> str:
        return self.subject


class MaintenanceWindow(models.Model):
    """Planned work on a group or a worker: alerts are held, state is still tracked.

    One-off (``starts_at``/``ends_at``) or weekly (``weekdays`` "0,2" with Monday = 0, ``start_time``
    UTC and ``duration_minutes``). Exactly one of ``group``/``worker`` is set (checked by the form).
    """

    group = models.ForeignKey(WorkerGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="maintenance_windows")
    worker = models.ForeignKey(HybridWorker, null=True, blank=True, on_delete=models.CASCADE, related_name="maintenance_windows")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    weekdays = models.CharField(max_length=20, blank=True, help_text="Weekly: comma-separated, Monday = 0.")
    start_time = models.TimeField(null=True, blank=True, help_text="Weekly: start (UTC).")
    duration_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Weekly: length.")
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reason


class AnalysisWindow(models.TextChoices):
    """Windows the capacity analysis is precomputed for (workers.services.capacity/correlation)."""

    DAY = "24h", "24 hours"
    WEEK = "7d", "7 days"
    MONTH = "30d", "30 days"


class CapacityRun(models.Model):
    """One precomputation of correlation findings and group capacity for a window.

    Written in a single transaction by ``services.capacity.refresh_capacity_analysis``; pages and
    the API read the latest complete run of a window, so a run in progress is never half-visible.
    """

    window = models.CharField(max_length=8, choices=AnalysisWindow.choices)
    computed_at = models.DateTimeField(help_text="The 'now' the window ends at.")
    window_start = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    bucket_seconds = models.PositiveIntegerField(help_text="Correlation bucket size.")
    pairs_examined = models.PositiveIntegerField(default=0)
    groups_examined = models.PositiveIntegerField(default=0)
    rules = models.JSONField(default=dict, help_text="FindingRules in force, shown on the page.")
    fleet = models.JSONField(default=dict, help_text="Fleet-wide hour-of-week heat maps (summed over groups), so the page reads one row.")

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [
            # selectors_capacity.latest_run(window): the newest run of a window.
            models.Index(fields=["window", "-computed_at"], name="capacityrun_latest"),
        ]


class CorrelationFinding(models.Model):
    """A (group, worker-or-group-level, metric, target) pair examined by a run.

    Stored: every flagged pair, plus the strongest unflagged ones so the page can say why they were
    not flagged. ``worker`` is null for a group-level finding (max member pressure vs delay).
    """

    run = models.ForeignKey(CapacityRun, on_delete=models.CASCADE, related_name="findings")
    rank = models.PositiveIntegerField()
    group = models.ForeignKey(WorkerGroup, on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(HybridWorker, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=8, help_text="cpu or mem (percent).")
    target = models.CharField(max_length=16, help_text="queue_delay or duration (seconds).")
    flagged = models.BooleanField(default=False)
    pearson = models.FloatField(null=True)
    pearson_p = models.FloatField(null=True)
    spearman = models.FloatField(null=True)
    p_value = models.FloatField(null=True, help_text="Spearman's two-sided p-value.")
    effect_p_value = models.FloatField(null=True, help_text="One-sided permutation p-value of the p95 ratio (null = not tested).")
    n = models.PositiveIntegerField(default=0, help_text="Buckets with both a metric and a target value.")
    slope = models.FloatField(null=True, help_text="Seconds of target per percentage point.")
    intercept = models.FloatField(null=True)
    metric_p95 = models.FloatField(null=True)
    target_p95_high = models.FloatField(null=True)
    target_p95_low = models.FloatField(null=True)
    effect_ratio = models.FloatField(null=True)
    score = models.FloatField(default=0)
    effect = models.CharField(max_length=300, blank=True, help_text="The effect in plain words.")
    reasons = models.JSONField(default=list, help_text="Why it was not flagged.")
    points = models.JSONField(default=list, help_text="[[x, y], ...] for the scatter, at most 400.")

    class Meta:
        ordering = ["run", "rank"]
        constraints = [models.UniqueConstraint(fields=["run", "rank"], name="uniq_finding_rank")]


class GroupCapacity(models.Model):
    """A group's measured load and utilization over a run's window, with its hour-of-week profile and
    daily series (for the trend and the forecast). The M/M/c recommendation is recomputed per page
    view from ``arrival_rate_peak`` and ``mean_service_seconds`` (cheap), so the target is a form field."""

    run = models.ForeignKey(CapacityRun, on_delete=models.CASCADE, related_name="groups")
    group = models.ForeignKey(WorkerGroup, on_delete=models.CASCADE, related_name="+")
    members = models.PositiveIntegerField(default=0)
    online = models.PositiveIntegerField(default=0)
    cpu_p50 = models.FloatField(null=True)
    cpu_p95 = models.FloatField(null=True)
    mem_p50 = models.FloatField(null=True)
    mem_p95 = models.FloatField(null=True)
    jobs = models.PositiveIntegerField(default=0, help_text="Jobs started in the window.")
    arrival_rate_mean = models.FloatField(default=0, help_text="Jobs per hour, mean over the window.")
    arrival_rate_peak = models.FloatField(default=0, help_text="Jobs per hour, p95 of hourly counts.")
    mean_service_seconds = models.FloatField(null=True, help_text="Mean duration of finished jobs.")
    queue_p50 = models.FloatField(null=True)
    queue_p95 = models.FloatField(null=True)
    concurrency_mean = models.FloatField(default=0, help_text="Little's law: job-seconds / window seconds.")
    concurrency_peak = models.FloatField(default=0, help_text="Busiest hour's mean concurrent jobs.")
    heat_load = models.JSONField(default=list, help_text="168 values: mean jobs started per hour of week (Mon 00 first).")
    heat_queue = models.JSONField(default=list, help_text="168 values: mean queue delay (s) per hour of week, null = no jobs.")
    daily = models.JSONField(default=list, help_text="[{day, cpu_p95, mem_p95, jobs, arrivals_peak}] oldest first.")
    forecast = models.JSONField(default=dict, help_text="Saturation forecasts (cpu, load): days to cross, range, slope.")

    class Meta:
        ordering = ["run", "group__name"]
        constraints = [models.UniqueConstraint(fields=["run", "group"], name="uniq_capacity_group")]


class RollupScope(models.TextChoices):
    FLEET = "fleet", "Fleet"
    GROUP = "group", "Group"
    RUNBOOK = "runbook", "Runbook"
    WORKER = "worker", "Worker (attributed jobs only)"


class JobRollup(models.Model):
    """Job counts and latency histograms for one scope over one period (abstract; see JobHourly).

    One row per (period, ``key``), where the scope says what the row sums: ``fleet`` (every job on a
    hybrid worker group), ``group``, ``runbook`` (across groups) or ``worker`` (jobs attributed to one
    worker; Azure only says which member ran a job in a single-member group). Histograms are JSON
    arrays of counts over ``workers.latency.BUCKET_EDGES``, the same edges everywhere, so rows add up.
    Jobs are placed by ``created_at``; a group+runbook cut is read from raw rows (index job_group_created).
    The histograms are JSON text in a text column, not jsonb: PostgreSQL spends ~200 ms rendering the
    30,000 jsonb arrays of a 30-day per-group page back to text, while text is sent as stored and parsed
    in one numpy call (selectors_latency._parse_hists).
    """

    scope = models.CharField(max_length=16, choices=RollupScope.choices)
    key = models.CharField(max_length=300, help_text="fleet | g:<group id> | r:<runbook> | w:<worker id>.")
    group = models.ForeignKey(WorkerGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(HybridWorker, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    runbook = models.CharField(max_length=260, blank=True, help_text="Set for scope=runbook only.")
    jobs = models.PositiveIntegerField(default=0, help_text="Jobs created in the period, any status.")
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    stopped = models.PositiveIntegerField(default=0)
    suspended = models.PositiveIntegerField(default=0)
    other = models.PositiveIntegerField(default=0, help_text="Any other status (queued, running, unknown strings).")
    not_available = models.PositiveIntegerField(default=0, help_text='Failed with "hybrid worker was not available".')
    queue_count = models.PositiveIntegerField(default=0, help_text="Jobs with a queue delay (started).")
    queue_sum = models.FloatField(default=0, help_text="Seconds.")
    queue_max = models.FloatField(null=True, blank=True, help_text="Seconds.")
    queue_hist = models.TextField(default="[]", help_text="JSON array of counts over latency.BUCKET_EDGES.")
    duration_count = models.PositiveIntegerField(default=0, help_text="Jobs with a duration (ended).")
    duration_sum = models.FloatField(default=0, help_text="Seconds.")
    duration_max = models.FloatField(null=True, blank=True, help_text="Seconds.")
    duration_hist = models.TextField(default="[]", help_text="JSON array of counts over latency.BUCKET_EDGES.")
    computed_at = models.DateTimeField()

    class Meta:
        abstract = True


class JobHourly(JobRollup):
    """Hourly job rollup, written only by ``services.job_rollups.rollup_jobs`` (whole hours, recomputed)."""

    hour = models.DateTimeField(help_text="Start of the UTC hour.")

    class Meta:
        ordering = ["hour"]
        constraints = [models.UniqueConstraint(fields=["hour", "key"], name="uniq_jobhourly_key")]
        indexes = [
            # selectors_latency: one scope over a window (fleet trend, per-group/runbook/worker tables).
            models.Index(fields=["scope", "hour"], name="jobhourly_scope_hour"),
            # selectors_latency / selectors_capacity: one group's hours (API ?group=, capacity heatmaps).
            models.Index(fields=["group", "hour"], name="jobhourly_group_hour"),
        ]


class JobDaily(JobRollup):
    """Daily job rollup (sum of that day's JobHourly rows), so 7 d / 30 d pages read few rows."""

    day = models.DateTimeField(help_text="Start of the UTC day.")

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["day", "key"], name="uniq_jobdaily_key")]
        indexes = [
            # selectors_latency: one scope over a 7 d / 30 d window.
            models.Index(fields=["scope", "day"], name="jobdaily_scope_day"),
            # selectors_latency: one group's days (API ?group=&window=30d).
            models.Index(fields=["group", "day"], name="jobdaily_group_day"),
        ]


class RunbookThreshold(models.Model):
    """Timeout thresholds per runbook; runbook "*" is the default for every other runbook.

    Hybrid jobs have no service time limit, so a timeout is ours to define. Without a "*" row the
    built-in defaults apply (workers.latency.DEFAULT_MAX_QUEUE_SECONDS / DEFAULT_MAX_RUN_SECONDS).
    """

    runbook = models.CharField(max_length=260, unique=True, help_text='Runbook name, or "*" for the default.')
    max_queue_seconds = models.PositiveIntegerField(help_text="A job queued longer than this is a timeout.")
    max_run_seconds = models.PositiveIntegerField(help_text="A job running longer than this is a timeout.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["runbook"]

    def __str__(self) -> str:
        return self.runbook
