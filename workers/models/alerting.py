"""Alerting: an Alert is one incident; a Notification is one email about it; maintenance windows
silence alerts for a group or worker."""
from __future__ import annotations

from django.db import models

from workers.models.fleet import AutomationAccount, HybridWorker, WorkerGroup


class AlertKind(models.TextChoices):
    WORKER_DOWN = "worker_down", "Worker down"
    GROUP_ROLLUP = "group_rollup", "Several workers of a group down"
    BLIND = "blind", "Monitoring is blind"
    FLAPPING = "flapping", "Worker flapping"
    PRESSURE = "pressure", "Worker under CPU/memory pressure"
    JOBS_FAILING = "jobs_failing", "Jobs of a group failing (managed identity, job limit)"


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
