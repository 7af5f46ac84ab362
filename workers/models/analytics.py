"""Analytics: precomputed capacity/correlation runs, job latency rollups and runbook thresholds."""
from __future__ import annotations

from django.db import models

from workers.models.fleet import HybridWorker, WorkerGroup


class AnalysisWindow(models.TextChoices):
    """Windows the capacity analysis is precomputed for (workers.capacity.measure/correlation)."""

    DAY = "24h", "24 hours"
    WEEK = "7d", "7 days"
    MONTH = "30d", "30 days"


class CapacityRun(models.Model):
    """One precomputation of correlation findings and group capacity for a window.

    Written in a single transaction by ``workers.capacity.correlation.compute_findings``; pages and
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
            # workers.capacity.selectors.runs.latest_run(window): the newest run of a window.
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
    arrays of counts over ``workers.rules.latency.BUCKET_EDGES``, the same edges everywhere, so rows add up.
    Jobs are placed by ``created_at``; a group+runbook cut is read from raw rows (index job_group_created).
    The histograms are JSON text in a text column, not jsonb: PostgreSQL spends ~200 ms rendering the
    30,000 jsonb arrays of a 30-day per-group page back to text, while text is sent as stored and parsed
    in one numpy call (``workers.rules.job_rollups.merge_rows``).
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
            # workers.latency.selectors: one scope over a window (fleet trend, per-group/runbook/worker tables).
            models.Index(fields=["scope", "hour"], name="jobhourly_scope_hour"),
            # workers.latency.selectors / workers.capacity: one group's hours (API ?group=, capacity heatmaps).
            models.Index(fields=["group", "hour"], name="jobhourly_group_hour"),
        ]


class JobDaily(JobRollup):
    """Daily job rollup (sum of that day's JobHourly rows), so 7 d / 30 d pages read few rows."""

    day = models.DateTimeField(help_text="Start of the UTC day.")

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["day", "key"], name="uniq_jobdaily_key")]
        indexes = [
            # workers.latency.selectors: one scope over a 7 d / 30 d window.
            models.Index(fields=["scope", "day"], name="jobdaily_scope_day"),
            # workers.latency.selectors: one group's days (API ?group=&window=30d).
            models.Index(fields=["group", "day"], name="jobdaily_group_day"),
        ]


class RunbookThreshold(models.Model):
    """Timeout thresholds per runbook; runbook "*" is the default for every other runbook.

    Hybrid jobs have no service time limit, so a timeout is ours to define. Without a "*" row the
    built-in defaults apply (workers.rules.latency.DEFAULT_MAX_QUEUE_SECONDS / DEFAULT_MAX_RUN_SECONDS).
    """

    runbook = models.CharField(max_length=260, unique=True, help_text='Runbook name, or "*" for the default.')
    max_queue_seconds = models.PositiveIntegerField(help_text="A job queued longer than this is a timeout.")
    max_run_seconds = models.PositiveIntegerField(help_text="A job running longer than this is a timeout.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["runbook"]

    def __str__(self) -> str:
        return self.runbook
