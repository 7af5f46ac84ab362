"""The ARM routes of Azure Automation: Hybrid Worker groups, their workers, and jobs.

Lists page with an absolute ``nextLink`` like ARM; jobs honour the ``$filter`` subset Automation
accepts and its 30-day retention, newest first. Everything is read from the simulation at its now.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote

from workers.emulator.server.formats import arm_dt, from_epoch
from workers.emulator.server.odata import Clause, FilterError, parse_job_filter
from workers.emulator.server.plumbing import Reply, RequestBase
from workers.emulator.simulation import SimGroup, SimJob, SimWorker

JOB_RETENTION_SECONDS = 30 * 86400  # Azure Automation keeps job records for 30 days
REMAINING_READS = "x-ms-ratelimit-remaining-subscription-reads"
# Filters a strict emulator refuses, as a service that does not support them would (never documented).
STRICT_REFUSED_FIELDS = {"lastModifiedTime": "properties/lastModifiedTime", "runOn": "properties/runOn"}


class ArmRoutes(RequestBase):
    """GET on the Automation account's ``hybridRunbookWorkerGroups`` and ``jobs`` resources."""

    _arm_headers: dict[str, str]  # the remaining-reads header of this request's token

    def _arm(self, segs: list[str], low: list[str], query: str) -> None:
        sim = self.emu.sim
        self._arm_headers = self._take_read_token()
        if len(low) < 8 or low[2] != "resourcegroups" or low[4] != "providers" \
                or low[5] != "microsoft.automation" or low[6] != "automationaccounts":
            raise Reply(404, "NotFound", f"The resource path '/{'/'.join(segs)}' is not served by the emulator.")
        if low[1] != sim.subscription_id.lower():
            raise Reply(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        if low[3] != sim.resource_group.lower():
            raise Reply(404, "ResourceGroupNotFound", f"Resource group '{segs[3]}' could not be found.")
        if low[7] != sim.automation_account.lower():
            raise Reply(404, "ResourceNotFound",
                        f"The Resource 'Microsoft.Automation/automationAccounts/{segs[7]}' under resource group "
                        f"'{segs[3]}' was not found.")
        params = parse_qs(query, keep_blank_values=True)
        api_version = (params.get("api-version") or [""])[0]
        if not api_version:
            raise Reply(400, "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.")
        skip_text = (params.get("$skip") or ["0"])[0]
        if not skip_text.isdigit():
            raise Reply(400, "BadRequest", f"Invalid $skip value '{skip_text}'.")
        skip = int(skip_text)
        filter_text = (params.get("$filter") or [""])[0]
        rest, rest_low = segs[8:], low[8:]
        now = sim.clock.now()
        sim.ensure(now)
        path = "/" + "/".join(segs)
        if rest_low[:1] == ["hybridrunbookworkergroups"]:
            if len(rest) == 1:
                self._no_filter(filter_text)
                return self._page(sim.groups, skip, path, api_version, filter_text, self._group_json)
            group = sim.group(rest[1])
            if group is None:
                raise Reply(404, "NotFound", f"Hybrid Runbook Worker Group '{rest[1]}' was not found.")
            if len(rest) == 2:
                return self._json(200, self._group_json(group), self._arm_headers)
            if rest_low[2] == "hybridrunbookworkers" and len(rest) == 3:
                self._no_filter(filter_text)
                members = [sim.workers[i] for i in group.members]
                return self._page(members, skip, path, api_version, filter_text,
                                  lambda w: self._worker_json(w, now))
            if rest_low[2] == "hybridrunbookworkers" and len(rest) == 4:
                worker = sim.worker_by_id(rest[3])
                if worker is None or worker.group != group.name:
                    raise Reply(404, "NotFound", f"Hybrid Runbook Worker '{rest[3]}' was not found.")
                return self._json(200, self._worker_json(worker, now), self._arm_headers)
        if rest_low[:1] == ["jobs"]:
            if len(rest) == 1:
                try:
                    clauses = parse_job_filter(filter_text)
                except FilterError as exc:
                    raise Reply(400, "BadRequest", f"Invalid $filter '{filter_text}': {exc}.") from exc
                self._strict_filter(clauses, filter_text)
                return self._list_jobs(clauses, skip, path, api_version, filter_text, now)
            job = sim.job(rest[1])
            if job is None or not now.timestamp() - JOB_RETENTION_SECONDS <= job.created <= now.timestamp():
                raise Reply(404, "NotFound", "The job was not found.")
            if len(rest) == 2:
                return self._json(200, self._job_json(job, now, full=True), self._arm_headers)
            if len(rest) == 3 and rest_low[2] == "output":
                text = "" if job.status_at(now.timestamp()) != "Completed" else f"{job.runbook} finished.\n"
                return self._send(200, text.encode(), "text/plain; charset=utf-8")
            if len(rest) == 3 and rest_low[2] == "streams":
                return self._json(200, {"value": self._streams(job, now), "nextLink": None})
        raise Reply(404, "NotFound", f"The resource path '{path}' is not served by the emulator.")

    def _take_read_token(self) -> dict[str, str]:
        """ARM's read bucket: a token per request, or a 429 with Retry-After (whole seconds) when empty."""
        bucket = self.emu.read_bucket
        if bucket is None:
            return {REMAINING_READS: "249"}
        granted, remaining, retry_after = bucket.take()
        if not granted:
            self._fault = "throttled"
            sim = self.emu.sim
            raise Reply(429, "SubscriptionRequestsThrottled",
                        f"Number of 'read' requests for subscription '{sim.subscription_id}' actor "
                        f"'{self.emu.config.client_id}' exceeded. Please try again after '{retry_after}' seconds "
                        "after additional tokens are available. Refer to https://aka.ms/arm-throttling",
                        {"Retry-After": str(retry_after), REMAINING_READS: "0"})
        return {REMAINING_READS: str(remaining)}

    def _strict_filter(self, clauses: list[Clause], filter_text: str) -> None:
        """In strict mode, the filters Automation is not known to support get a 400 like any bad filter."""
        if self.emu.config.job_filters != "strict":
            return
        for c in clauses:
            if c.field in STRICT_REFUSED_FIELDS:
                raise Reply(400, "BadRequest",
                            f"Invalid $filter '{filter_text}': the property '{STRICT_REFUSED_FIELDS[c.field]}' "
                            "is not supported in a filter on jobs.")

    def _no_filter(self, filter_text: str) -> None:
        if filter_text.strip():
            raise Reply(400, "BadRequest", f"Invalid $filter '{filter_text}': this list supports no $filter.")

    def _page(self, items: list[Any], skip: int, path: str, api_version: str, filter_text: str,
              render: Callable[[Any], dict[str, Any]]) -> None:
        """One page of ``items`` (rendered to JSON only for the page) with an absolute ``nextLink``."""
        size = self.emu.config.page_size
        page = [render(item) for item in items[skip: skip + size]]
        next_link = None
        if skip + size < len(items):
            q = f"api-version={quote(api_version, safe='')}&$skip={skip + size}"
            if filter_text:
                q += f"&$filter={quote(filter_text, safe='')}"
            next_link = f"{self._origin()}{path}?{q}"
        self._json(200, {"value": page, "nextLink": next_link}, self._arm_headers)

    def _group_json(self, g: SimGroup) -> dict[str, Any]:
        props: dict[str, Any] = {"groupType": g.group_type}
        if g.credential:
            props["credential"] = {"name": g.credential}
        return {
            "id": f"{self.emu.arm_prefix}/hybridRunbookWorkerGroups/{g.name}",
            "name": g.name,
            "type": "Microsoft.Automation/AutomationAccounts/HybridRunbookWorkerGroups",
            "location": self.emu.sim.location,
            "properties": props,
            "systemData": {
                "createdBy": "ops@contoso.com", "createdByType": "User", "createdAt": arm_dt(g.created),
                "lastModifiedBy": "ops@contoso.com", "lastModifiedByType": "User",
                "lastModifiedAt": arm_dt(g.created),
            },
        }

    def _worker_json(self, w: SimWorker, now: datetime) -> dict[str, Any]:
        return {
            "id": f"{self.emu.arm_prefix}/hybridRunbookWorkerGroups/{w.group}/hybridRunbookWorkers/{w.worker_id}",
            "name": w.worker_id,
            "type": "Microsoft.Automation/AutomationAccounts/HybridRunbookWorkerGroups/HybridRunbookWorkers",
            "location": self.emu.sim.location,
            "properties": {
                "ip": w.private_ip,
                "registeredDateTime": self.emu.registered_text(w),
                "lastSeenDateTime": arm_dt(self.emu.sim.last_seen(w, now), 3),
                "vmResourceId": w.vm_resource_id,
                "workerName": w.name,
                "workerType": w.worker_type,
            },
            "systemData": {"createdAt": self.emu.registered_text(w), "createdBy": "ops@contoso.com",
                           "createdByType": "User"},
        }

    def _job_json(self, job: SimJob, now: datetime, *, full: bool = False) -> dict[str, Any]:
        t = now.timestamp()
        status = job.status_at(t)
        started = job.started if job.started is not None and job.started <= t else None
        ended = job.ended if job.ended is not None and job.ended <= t else None
        terminal = status in ("Completed", "Failed", "Stopped", "Suspended")
        provisioning = {"Completed": "Succeeded", "Failed": "Failed", "Suspended": "Suspended"}.get(
            status, "Succeeded" if status == "Stopped" else "Processing")
        props: dict[str, Any] = {
            "jobId": job.job_id,
            "runbook": {"name": job.runbook},
            "startedBy": job.started_by,
            "provisioningState": provisioning,
            "status": status,
            "creationTime": arm_dt(from_epoch(job.created)),
            "startTime": arm_dt(from_epoch(started)),
            "endTime": arm_dt(from_epoch(ended)) if terminal else None,
            "lastModifiedTime": arm_dt(from_epoch(job.last_modified_at(t))),
            "runOn": job.run_on,
            "jobRuntimeEnvironment": {"runtimeEnvironmentName": job.runtime},
        }
        if full:
            props.update({
                "statusDetails": "None",
                "exception": job.exception or None if terminal else None,
                "lastStatusModifiedTime": arm_dt(from_epoch(job.last_modified_at(t))),
                "parameters": {},
            })
        return {
            "id": f"{self.emu.arm_prefix}/jobs/{job.job_id}",
            "name": job.job_id,
            "type": "Microsoft.Automation/AutomationAccounts/Jobs",
            "properties": props,
        }

    def _streams(self, job: SimJob, now: datetime) -> list[dict[str, Any]]:
        t = now.timestamp()
        if not job.exception or job.ended is None or job.ended > t:
            return []
        sid = f"{job.job_id}_{int(job.ended * 10_000_000):020d}_{1:020d}"
        return [{
            "id": f"{self.emu.arm_prefix}/jobs/{job.job_id}/streams/{sid}",
            "properties": {"jobStreamId": sid, "time": arm_dt(from_epoch(job.ended)), "streamType": "Error",
                           "summary": job.exception[:200]},
        }]

    def _list_jobs(self, clauses: list[Clause], skip: int, path: str, api_version: str, filter_text: str,
                   now: datetime) -> None:
        sim = self.emu.sim
        t = now.timestamp()
        with sim.lock:
            # Jobs are kept in creation order: creation-time clauses become a slice, not a scan.
            created = sim.job_created
            # Automation keeps job metadata for 30 days: older jobs are gone from the API.
            lo, hi = bisect.bisect_left(created, t - JOB_RETENTION_SECONDS), bisect.bisect_right(created, t)
            for c in clauses:
                if c.field != "creationTime":
                    continue
                assert isinstance(c.value, datetime)
                ref = c.value.timestamp()
                if c.op in ("ge", "eq"):
                    lo = max(lo, bisect.bisect_left(created, ref))
                if c.op == "gt":
                    lo = max(lo, bisect.bisect_right(created, ref))
                if c.op in ("le", "eq"):
                    hi = min(hi, bisect.bisect_right(created, ref))
                if c.op == "lt":
                    hi = min(hi, bisect.bisect_left(created, ref))
            jobs = sim.jobs[lo:hi] if lo < hi else []
        # The slice applied the creationTime clauses exactly; only the others are checked job by job.
        for c in clauses:
            if c.field != "creationTime":
                jobs = [j for j in jobs if _matches(j, c, t)]
        jobs.reverse()  # newest first, like the portal and the service
        self._page(jobs, skip, path, api_version, filter_text, lambda j: self._job_json(j, now))


def _matches(job: SimJob, clause: Clause, now: float) -> bool:
    if clause.field in ("status", "runOn", "runbook"):
        actual = {"status": job.status_at(now), "runOn": job.run_on, "runbook": job.runbook}[clause.field]
        equal = actual.lower() == str(clause.value).lower()
        return equal if clause.op == "eq" else not equal
    value: float | None
    if clause.field == "creationTime":
        value = job.created
    elif clause.field == "lastModifiedTime":
        value = job.last_modified_at(now)
    elif clause.field == "startTime":
        value = job.started if job.started is not None and job.started <= now else None
    else:
        value = job.ended if job.ended is not None and job.ended <= now and job.status_at(now) != "Running" else None
    if value is None:
        return False
    assert isinstance(clause.value, datetime)
    ref = clause.value.timestamp()
    return {"ge": value >= ref, "gt": value > ref, "le": value <= ref, "lt": value < ref, "eq": value == ref}[clause.op]
