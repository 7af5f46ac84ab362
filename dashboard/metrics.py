"""/metrics: Prometheus text from prometheus_client registries whose Collectors read the database
(and the broker's queue length) at scrape time; only the per-group job latency histograms' text is
reused between scrapes, per jobs poll and for at most a minute (``render``).

Nothing is counted in process memory, so any number of web and Celery processes on any number of
hosts report the same figures: the database is where the work of every process is recorded (PollRun,
the alert outbox, notifications, alerts, job rollups). Metric names and their windows are documented
in docs/metrics.md.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import redis
from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workers.fleet import selectors as fleet_selectors
from workers.fleet.selectors.job_stats import per_jobs_poll
from workers.metrics import selectors

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BROKER_TIMEOUT_SECONDS = 1.0


def _age(now: datetime, moment: datetime | None) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment is not None else float("nan")


def _le(bound: float) -> str:
    return repr(float(bound))


def celery_queue_lengths() -> dict[str, int] | None:
    """LLEN of the default Celery queue when the broker is Redis; None for another broker or when
    Redis does not answer (the metric is then absent and ``hrw_celery_broker_up`` is 0)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_SECONDS, socket_timeout=BROKER_TIMEOUT_SECONDS)
    try:
        return {queue: int(client.llen(queue))}
    except (redis.exceptions.RedisError, OSError) as exc:
        log.debug("metrics: broker queue length unavailable: %s", exc)
        return {}
    finally:
        client.close()


class DatabaseCollector(Collector):
    """Every metric family, computed from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._workers(now)
        yield from self._polls(now)
        yield from self._alerting(now)
        yield from self._celery()
        yield from self._arm()

    def _workers(self, now: datetime) -> Iterator[Metric]:
        workers = GaugeMetricFamily("hrw_workers", "Hybrid workers by current status.", labels=["account", "group", "status"])
        for account, group, status, count in fleet_selectors.worker_status_counts():
            workers.add_metric([account, group, status], count)
        yield workers
        last = fleet_selectors.last_successful_poll_at()
        yield GaugeMetricFamily(
            "hrw_last_poll_age_seconds",
            "Seconds since the last successful poll: each enabled account's newest, then the oldest of those (NaN: none yet).",
            value=_age(now, last),
        )

    def _polls(self, now: datetime) -> Iterator[Metric]:
        runs = GaugeMetricFamily("hrw_poll_runs_last_hour", "Polls started in the last hour and finished, by outcome (ok, transient: "
                                 "will be retried, failed).", labels=["account", "kind", "outcome"])
        rows = GaugeMetricFamily("hrw_poll_rows_last_hour", "Rows ingested by the polls started in the last hour and finished.",
                                 labels=["account", "kind"])
        duration = GaugeHistogramMetricFamily("hrw_poll_duration_seconds_last_hour",
                                              "Duration of the polls started in the last hour and finished.", labels=["account", "kind", "outcome"])
        rows_by: dict[tuple[str, str], int] = {}
        for f in selectors.poll_runs(now=now):
            runs.add_metric([f.account, f.kind, f.outcome], f.runs)
            rows_by[(f.account, f.kind)] = rows_by.get((f.account, f.kind), 0) + f.rows
            buckets = [(_le(b), c) for b, c in zip(selectors.POLL_DURATION_BUCKETS, f.buckets, strict=True)]
            duration.add_metric([f.account, f.kind, f.outcome], [*buckets, ("+Inf", f.runs)], f.duration_sum)
        for (account, kind), n in sorted(rows_by.items()):
            rows.add_metric([account, kind], n)
        yield from (runs, rows, duration)
        last = GaugeMetricFamily("hrw_poll_last_success_age_seconds", "Seconds since the newest successful poll of this kind.",
                                 labels=["account", "kind"])
        for account, kind, finished in selectors.last_successful_polls():
            last.add_metric([account, kind], _age(now, finished))
        yield last
        in_flight = GaugeMetricFamily("hrw_polls_in_flight", "Polls started and not finished.", labels=["kind"])
        for kind, n in selectors.polls_in_flight().items():
            in_flight.add_metric([kind], n)
        yield in_flight

    def _alerting(self, now: datetime) -> Iterator[Metric]:
        a = selectors.alerting(now=now)
        yield GaugeMetricFamily("hrw_alert_outbox_backlog", "Status changes not yet processed by the alert pipeline.",
                                value=a.outbox_backlog)
        yield GaugeMetricFamily("hrw_alert_outbox_oldest_age_seconds",
                                "Age of the oldest unprocessed status change (0: none waiting).",
                                value=_age(now, a.outbox_oldest) if a.outbox_oldest else 0.0)
        notifications = GaugeMetricFamily("hrw_notifications", "Alert emails by kind and status (failed: gave up after "
                                          "ALERT_MAX_ATTEMPTS).", labels=["kind", "status"])
        for (kind, status), n in sorted(a.notifications.items()):
            notifications.add_metric([kind, status], n)
        yield notifications
        yield GaugeMetricFamily("hrw_notifications_retrying", "Alert emails waiting for a retry after a failed send.",
                                value=a.retrying)
        open_alerts = GaugeMetricFamily("hrw_alerts_open", "Open alerts by kind.", labels=["kind"])
        for kind, n in sorted(a.open_alerts.items()):
            open_alerts.add_metric([kind], n)
        yield open_alerts

    def _arm(self) -> Iterator[Metric]:
        """ARM responses, 429s and the last remaining-reads figure per read budget (Redis only: the
        counts every Celery worker shares; without Redis there is nothing shared to read)."""
        if not settings.REDIS_URL:
            return
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=BROKER_TIMEOUT_SECONDS, socket_timeout=BROKER_TIMEOUT_SECONDS)
        try:
            budgets = selectors.arm_budget_stats(client)
        except (redis.exceptions.RedisError, OSError) as exc:
            log.debug("metrics: ARM budget counts unavailable: %s", exc)
            return
        finally:
            client.close()
        responses = CounterMetricFamily("hrw_arm_responses", "ARM responses seen by every Celery worker.", labels=["budget"])
        throttled = CounterMetricFamily("hrw_arm_throttled", "ARM 429 (throttled) responses.", labels=["budget"])
        remaining = GaugeMetricFamily("hrw_arm_remaining_reads", "Last x-ms-ratelimit-remaining-subscription-reads.", labels=["budget"])
        for b in budgets:
            responses.add_metric([b.budget], b.responses)
            throttled.add_metric([b.budget], b.throttled)
            if b.remaining is not None:
                remaining.add_metric([b.budget], b.remaining)
        yield from (responses, throttled, remaining)

    def _celery(self) -> Iterator[Metric]:
        lengths = celery_queue_lengths()
        if lengths is None:
            return
        yield GaugeMetricFamily("hrw_celery_broker_up", "1 when the Redis broker answered this scrape.", value=1 if lengths else 0)
        depth = GaugeMetricFamily("hrw_celery_queue_length", "Tasks waiting in the Celery queue (Redis LLEN).", labels=["queue"])
        for queue, n in lengths.items():
            depth.add_metric([queue], n)
        yield depth


class JobLatencyCollector(Collector):
    """The per-group job latency histograms: thousands of lines at estate scale, from the hourly
    rollups, which change only after a jobs poll. ``render`` reuses their text per jobs poll."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        queue = GaugeHistogramMetricFamily("hrw_job_queue_delay_seconds_last_24h",
                                           "Job queue delay (created to started) per group, last 24 hourly rollups.",
                                           labels=["account", "group"])
        duration = GaugeHistogramMetricFamily("hrw_job_duration_seconds_last_24h",
                                              "Job duration (started to ended) per group, last 24 hourly rollups.",
                                              labels=["account", "group"])
        bounds = [*map(_le, selectors.JOB_LATENCY_BUCKETS), "+Inf"]
        for f in selectors.job_latency_by_group(now=now):
            queue.add_metric([f.account, f.group], list(zip(bounds, f.queue_buckets, strict=True)), f.queue_sum)
            duration.add_metric([f.account, f.group], list(zip(bounds, f.duration_buckets, strict=True)), f.duration_sum)
        yield from (queue, duration)


# The job latency histograms' text is reused for at most this long (seconds) while no jobs poll has
# landed: their 24 h window slides by at most this much.
JOB_LATENCY_MAX_AGE_SECONDS = 60


def _text(collector: Collector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def render() -> bytes:
    """One scrape: every family read afresh, except the per-group job latency histograms, whose text
    (the costly part at estate scale: 500 groups are 11,000 lines) is computed at most once per jobs
    poll and per ``JOB_LATENCY_MAX_AGE_SECONDS`` and shared by every web process (``per_jobs_poll``)."""
    now = timezone.now()
    latency = per_jobs_poll("metrics-job-latency", lambda: _text(JobLatencyCollector()), now=now,
                            max_age_seconds=JOB_LATENCY_MAX_AGE_SECONDS)
    return _text(DatabaseCollector()) + latency
