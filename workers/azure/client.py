"""The Azure client: the ONLY module in the project that imports an Azure SDK.

It reads one Automation account (worker groups, workers, jobs) through ``azure-mgmt-automation``
and its Log Analytics workspace (heartbeats, CPU/memory, agent events) through
``azure-monitor-query``, authenticated by ``azure-identity``. It returns the small frozen records
of ``workers.azure.records`` and raises only our own errors (``workers.azure.errors``):

* ``AzureTransientError`` -- worth retrying later: 408, 429, 5xx, timeouts, connection errors, and
  bodies that could not be decoded (a truncated or garbled answer: the same call usually succeeds
  when repeated, so one must not fail a poll for good); ``retry_after`` carries the service's
  ``Retry-After`` when there was one;
* ``AzureError`` -- retrying will not help: 400/401/403/404, authentication failures, decoded rows
  of a shape we cannot use.

Nothing here writes anywhere, so every call is safe to repeat. A list that fails on any page raises
and returns nothing, so callers never mistake half a fleet for the whole fleet. The query text comes
from ``workers.azure.queries``, the parsing from ``workers.azure.parse``; which SDK exception
becomes which of our errors is decided here (``_map_error``).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from azure.core.exceptions import AzureError as _SdkAzureError
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.mgmt.automation import AutomationClient
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult

from workers.azure.arm import CappedRetryPolicy, make_credential, shared_throttle
from workers.azure.connection import ConnectionSettings, retry_kwargs, transport_kwargs
from workers.azure.errors import (
    AzureError,
    AzureTransientError,
    JobFilterRefused,
    LastStatus,
    exception_causes,
    is_transient_status,
    malformed_body,
    retry_after_header,
    short_message,
    tls_untrusted,
)
from workers.azure.logs import LOG_QUERIES
from workers.azure.parse import (
    BadRow,
    Row,
    merge_jobs,
    parse_agent_event_row,
    parse_group,
    parse_heartbeat_row,
    parse_job,
    parse_job_stream,
    parse_rows,
    parse_utilization_hour_row,
    parse_utilization_row,
    parse_worker,
    partial_error_text,
    table_rows,
    wire_mapping,
)
from workers.azure.queries import (
    agent_events_query,
    as_utc,
    heartbeat_query,
    jobs_filters,
    utilization_hourly_query,
    utilization_query,
)
from workers.azure.records import GroupRecord, JobRecord, JobStreamRecord, LogsResult, WorkerRecord
from workers.azure.throttle import ArmThrottle

__all__ = ["AzureClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _map_error(exc: BaseException, what: str, hook: LastStatus | None = None) -> AzureError:
    """Our error for any exception raised while talking to Azure."""
    if isinstance(exc, AzureError):  # ours already
        return exc
    if tls_untrusted(exc):
        return AzureError(f"{what}: the TLS certificate was not trusted; check the CA bundle ({short_message(exc)})")
    if isinstance(exc, DecodeError) or (isinstance(exc, _SdkAzureError) and malformed_body(exc)):
        # A truncated or garbled answer (also a 200 whose JSON is cut short): transient, retried.
        return AzureTransientError(f"{what}: Azure sent a body that could not be decoded ({short_message(exc)})")
    if isinstance(exc, ClientAuthenticationError):
        # azure-identity reports an unreachable or failing token endpoint as an authentication
        # error too; that is an outage, not a wrong secret.
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if is_transient_status(status) or any(
            isinstance(cause, (ServiceRequestError, ServiceResponseError, OSError)) for cause in exception_causes(exc)
        ):
            return AzureTransientError(f"{what}: the token endpoint could not be reached ({short_message(exc)})")
        return AzureError(f"{what}: authentication failed ({short_message(exc)})")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        response = getattr(exc, "response", None)
        retry_after = retry_after_header(getattr(response, "headers", None))
        if status is None and hook is not None:
            status = hook.status
        if is_transient_status(status):
            return AzureTransientError(
                f"{what}: HTTP {status} ({short_message(exc)})", retry_after=retry_after, status=status
            )
        return AzureError(f"{what}: HTTP {status} ({short_message(exc)})", status=status)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return AzureTransientError(f"{what}: connection failed ({type(exc).__name__}: {short_message(exc)})")
    if isinstance(exc, _SdkAzureError):
        return AzureError(f"{what}: {type(exc).__name__}: {short_message(exc)}")
    if isinstance(exc, ValueError):  # json.JSONDecodeError and friends from the Logs client
        status = hook.status if hook else None
        if is_transient_status(status):
            return AzureTransientError(
                f"{what}: HTTP {status} with a non-JSON body", retry_after=hook.retry_after if hook else None
            )
        if malformed_body(exc):
            return AzureTransientError(f"{what}: Azure sent a malformed body ({short_message(exc)})")
        return AzureError(f"{what}: unexpected value ({short_message(exc)})")
    if isinstance(exc, OSError):
        return AzureTransientError(f"{what}: connection failed ({short_message(exc)})")
    return AzureError(f"{what}: unexpected {type(exc).__name__}: {short_message(exc)}")


# Exceptions the boundary converts. Anything else is a bug in the adapter and should be seen.
_CONVERTED = (_SdkAzureError, ValueError, OSError, TypeError, KeyError, AttributeError)


class AzureClient:
    """Reads one Automation account and its Log Analytics workspace.

    SDK clients are created on first use and reused. Read-only: every method is safe to call again.
    Use as a context manager, or call ``close()``.
    """

    def __init__(
        self, conn: ConnectionSettings, *, credential: Any = None, transport: Any = None, throttle: Any = "settings"
    ) -> None:
        """``credential`` / ``transport`` override azure-identity / the requests transport; only the
        wire-format fixture tests use them (a real SDK pipeline over an in-process transport).
        ``throttle``: the ARM read budget (``workers.azure.throttle``); by default the shared one of
        this subscription and principal from the settings, ``None`` for none."""
        self.conn = conn
        self._throttle: ArmThrottle | None = shared_throttle(conn) if throttle == "settings" else throttle
        self._credential: Any = credential
        self._transport = transport
        self._automation: AutomationClient | None = None
        self._logs: LogsQueryClient | None = None
        # Lazy creation under a lock: a cached client may be shared by threads of one worker process.
        self._lock = threading.RLock()

    # --- plumbing ------------------------------------------------------------------------------

    def _transport_kwargs(self) -> dict[str, Any]:
        return transport_kwargs(self.conn, self._transport)

    def _retry_policy(self) -> RetryPolicy:
        return CappedRetryPolicy(**retry_kwargs(self.conn))

    def _get_credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                self._credential = make_credential(self.conn, self._transport)
            return self._credential

    def _automation_client(self) -> AutomationClient:
        with self._lock:
            if self._automation is None:
                self._automation = AutomationClient(
                    self._get_credential(),
                    self.conn.subscription_id,
                    base_url=self.conn.arm_endpoint,
                    retry_policy=self._retry_policy(),
                    raw_request_hook=self._before_arm_request,  # every attempt, retries included
                    **self._transport_kwargs(),
                )
            return self._automation

    def _before_arm_request(self, request: Any) -> None:
        if self._throttle is not None:
            self._throttle.acquire()

    def _arm_status(self) -> LastStatus:
        """A response hook that also feeds the throttle (429 Retry-After, remaining reads)."""
        return LastStatus(self._throttle.observe if self._throttle is not None else None)

    def _logs_client(self) -> LogsQueryClient:
        with self._lock:
            if self._logs is None:
                self._logs = LogsQueryClient(
                    self._get_credential(),
                    endpoint=self.conn.logs_endpoint,
                    audience=self.conn.logs_audience,
                    retry_policy=self._retry_policy(),
                    **self._transport_kwargs(),
                )
            return self._logs

    def close(self) -> None:
        """Close the SDK clients and the credential. Safe to call twice."""
        for attr in ("_automation", "_logs", "_credential"):
            with self._lock:
                obj = getattr(self, attr)
                setattr(self, attr, None)
            close = getattr(obj, "close", None)
            if callable(close):
                try:
                    close()
                except _CONVERTED as exc:  # closing must never mask the real outcome
                    logger.debug("closing %s failed: %s", attr, exc)

    def __enter__(self) -> AzureClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- Automation (ARM) ----------------------------------------------------------------------

    def _list(
        self, what: str, call: Callable[[LastStatus], Iterable[Any]], parse: Callable[[Any], T], *,
        reject: Callable[[Any], str | None] | None = None, stop: Callable[[Any], bool] | None = None,
    ) -> list[T]:
        """Materialise every page inside the error boundary: a failure on page N returns nothing.

        ``reject(item)`` returning a reason stops at once with ``JobFilterRefused`` (a filter the
        service visibly ignored); ``stop(item)`` ends the listing before that item (no more pages).
        """
        hook = self._arm_status()
        items: list[Any] = []
        try:
            for raw in call(hook):
                item = wire_mapping(raw)
                reason = reject(item) if reject is not None else None
                if reason:
                    raise JobFilterRefused(f"{what}: {reason}")
                if stop is not None and stop(item):
                    break
                items.append(item)
        except BadRow as exc:
            raise AzureError(f"{what}: {exc}") from exc
        except _CONVERTED as exc:
            raise _map_error(exc, what, hook) from exc
        return parse_rows(items, parse, what)

    def list_groups(self) -> list[GroupRecord]:
        """Every Hybrid Runbook Worker group of the account (all nextLink pages)."""
        c = self.conn
        return self._list(
            "list worker groups",
            lambda hook: self._automation_client().hybrid_runbook_worker_group.list_by_automation_account(
                c.resource_group, c.automation_account, raw_response_hook=hook
            ),
            parse_group,
        )

    def list_workers(self, group_name: str) -> list[WorkerRecord]:
        """Every worker of one group (all pages). The name goes into a URL path, percent-encoded by the SDK."""
        c = self.conn
        return self._list(
            f"list workers of group {group_name!r}",
            lambda hook: self._automation_client().hybrid_runbook_workers.list_by_hybrid_runbook_worker_group(
                c.resource_group, c.automation_account, group_name, raw_response_hook=hook
            ),
            lambda raw: parse_worker(raw, group_name),
        )

    def job_streams(self, job_id: str) -> list[JobStreamRecord]:
        """A job's streams (summaries, as Azure lists them); one listing, on demand (the job page)."""
        c = self.conn
        return self._list(
            f"list streams of job {job_id}",
            lambda hook: self._automation_client().job_stream.list_by_job(
                c.resource_group, c.automation_account, job_id, raw_response_hook=hook
            ),
            parse_job_stream,
        )

    def list_jobs(
        self, *, since: datetime, until: datetime | None = None, status: str | None = None, run_on: str | None = None
    ) -> list[JobRecord]:
        """Jobs created OR last modified in [since, until), optionally of one status / one group, where
        the service accepts those filters (the polls use ``workers.azure.jobs``, which needs none).

        Two filtered listings merged by job id (the later ``lastModifiedTime`` wins). ``status`` and
        ``run_on`` are also applied after the merge, in case a service ignores part of the filter.
        """
        flts = jobs_filters(since=since, until=until, status=status, run_on=run_on)
        return merge_jobs((self.list_jobs_filtered("list jobs", flt) for flt in flts), status=status, run_on=run_on)

    def list_jobs_filtered(
        self, what: str, flt: str | None, *, reject: Callable[[Any], str | None] | None = None,
        stop: Callable[[Any], bool] | None = None,
    ) -> list[JobRecord]:
        """One jobs listing with ``flt`` (built by ``workers.azure.queries`` only); a 400 (the service
        refused the filter) becomes ``JobFilterRefused``. See ``workers.azure.jobs`` for the callers."""
        c = self.conn

        def call(hook: LastStatus) -> Iterable[Any]:
            return self._automation_client().job.list_by_automation_account(
                c.resource_group, c.automation_account, filter=flt, raw_response_hook=hook
            )

        try:
            return self._list(what, call, parse_job, reject=reject, stop=stop)
        except JobFilterRefused:
            raise
        except AzureError as exc:
            if exc.status == 400:
                raise JobFilterRefused(f"{what}: the service refused the filter ({exc})", status=400) from exc
            raise

    def get_job(self, job_id: str) -> JobRecord | None:
        """One job, with its ``exception`` (list items carry none). None if Azure no longer has it."""
        c = self.conn
        hook = self._arm_status()
        try:
            raw = self._automation_client().job.get(c.resource_group, c.automation_account, job_id, raw_response_hook=hook)
            return parse_job(wire_mapping(raw))
        except BadRow as exc:
            raise AzureError(f"get job {job_id}: {exc}") from exc
        except _CONVERTED as exc:
            error = _map_error(exc, f"get job {job_id}", hook)
            if error.status == 404:
                return None
            raise error from exc

    # --- Log Analytics -------------------------------------------------------------------------

    def _query(self, what: str, query: str | None, start: datetime, end: datetime, parse: Callable[[Row], T]) -> LogsResult:
        if query is None:
            return LogsResult(rows=())
        if not self.conn.workspace_id:
            raise AzureError(f"{what}: no Log Analytics workspace is configured for this account")
        hook = LastStatus()
        try:
            result = self._logs_client().query_workspace(
                self.conn.workspace_id, query, timespan=(as_utc(start), as_utc(end)), raw_response_hook=hook
            )
        except _CONVERTED as exc:
            raise _map_error(exc, what, hook) from exc
        partial_error: str | None = None
        tables: Sequence[Any] | None
        if isinstance(result, LogsQueryPartialResult):
            tables = result.partial_data
            partial_error = partial_error_text(result.partial_error)
            logger.warning("%s: Log Analytics returned a partial result: %s", what, partial_error)
        else:
            tables = getattr(result, "tables", None)
        try:
            rows = tuple(parse_rows(table_rows(tables), parse, what))
        except (TypeError, AttributeError) as exc:
            raise AzureError(f"{what}: unexpected result shape ({short_message(exc)})") from exc
        return LogsResult(rows=rows, partial_error=partial_error)

    def latest_heartbeats(
        self, *, start: datetime, end: datetime, computers: Sequence[str] | None = None
    ) -> LogsResult:
        """The latest Heartbeat per Computer in [start, end). rows: tuple[HeartbeatRecord, ...]."""
        return self._query(
            "latest heartbeats", heartbeat_query(start, end, computers), start, end, parse_heartbeat_row
        )

    def utilization(self, *, start: datetime, end: datetime, computers: Sequence[str] | None = None) -> LogsResult:
        """CPU and memory % per computer per minute in [start, end). rows: tuple[UtilizationRecord, ...]."""
        return self._query("utilization", utilization_query(start, end, computers), start, end, parse_utilization_row)

    def utilization_hourly(self, *, start: datetime, end: datetime, computers: Sequence[str] | None = None) -> LogsResult:
        """CPU and memory per computer per hour in [start, end). rows: tuple[UtilizationHourRecord, ...]."""
        return self._query(
            "hourly utilization", utilization_hourly_query(start, end, computers), start, end, parse_utilization_hour_row
        )

    def agent_events(self, *, start: datetime, end: datetime, computers: Sequence[str] | None = None) -> LogsResult:
        """Event 4502 per computer in [start, end). rows: tuple[AgentEventRecord, ...]."""
        return self._query("agent events", agent_events_query(start, end, computers), start, end, parse_agent_event_row)

    def logs(self, kind: str, *, start: datetime, end: datetime, computers: Sequence[str] | None = None,
             resource_ids: Sequence[str] | None = None) -> LogsResult:
        """``workers.azure.logs.LOG_QUERIES[kind]`` in [start, end), only these machines (both None: all)."""
        what, build, parse = LOG_QUERIES[kind]
        return self._query(what, build(start, end, computers, resource_ids=resource_ids), start, end, parse)
