"""The Log Analytics routes: ``/v1/workspaces/{id}/query`` and ``/v1/$batch``.

Each query runs through ``kql.run_query`` at the simulation's now; the reply carries Log Analytics'
table shape, its partial-error body (row limit or an injected partial fault), and optional
statistics and render hints when the ``Prefer`` header asks for them.
"""
from __future__ import annotations

import json
import time
from typing import Any

from workers.emulator.server.kql import QueryError, QueryTimeout, parse_timespan, render_kind, run_query
from workers.emulator.server.plumbing import Reply, RequestBase, prefer_wait


class LogAnalyticsRoutes(RequestBase):
    """A single query and a batch of them against the emulated workspace."""

    def _logs_request(self, workspace: str, payload: Any, prefer: str) -> tuple[int, dict[str, Any]]:
        sim = self.emu.sim
        if workspace.lower() != sim.workspace_id.lower():
            return 404, {"error": {"code": "WorkspaceNotFoundError",
                                   "message": f"The workspace could not be found: {workspace}"}}
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return 400, QueryError("InvalidBody", "The body must be a JSON object with a 'query' string").body()
        query = payload["query"]
        self._kql = query
        now = sim.clock.now()
        sim.ensure(now)
        try:
            start, end = parse_timespan(payload.get("timespan"), now)
            began = time.perf_counter()
            wait = prefer_wait(prefer)
            limit = min(self.emu.config.query_timeout, wait) if wait else self.emu.config.query_timeout
            result = run_query(sim, query, now=now, start=start, end=end, max_rows=self.emu.config.max_rows,
                               timeout=limit)
        except QueryError as exc:
            return 400, exc.body()
        except QueryTimeout as exc:
            return 504, {"error": {"code": "GatewayTimeout", "message": str(exc)}}
        rows = result.rows
        body: dict[str, Any] = {"tables": [{
            "name": "PrimaryResult",
            "columns": [{"name": n, "type": t} for n, t in result.columns],
            "rows": rows,
        }]}
        partial = getattr(self, "_partial", False)
        if result.truncated or partial:
            if partial:
                body["tables"][0]["rows"] = rows[: len(rows) // 2]
            inner = (f"Query result set has exceeded the internal record count limit {self.emu.config.max_rows} "
                     "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)") if result.truncated \
                else "Partial query failure: a shard of the workspace did not answer (emulated fault)."
            body["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [{"code": "EngineError",
                             "message": "Something went wrong processing your query on the server.",
                             "innererror": {"code": "-2133196797", "message": inner, "severity": 2,
                                            "severityName": "Error"}}],
            }
        options = {p.strip().lower() for p in prefer.split(",") if p.strip()}
        if "include-statistics=true" in options:
            body["statistics"] = {"query": {"executionTime": round(time.perf_counter() - began, 6),
                                            "resourceUsage": {"cache": {}, "cpu": {}, "memory": {}},
                                            "datasetStatistics": [{"tableRowCount": len(rows),
                                                                   "tableSize": 0}]}}
        if "include-render=true" in options:
            kind = render_kind(query)
            body["render"] = {"visualization": kind} if kind else {}
        return 200, body

    def _logs_query(self, workspace: str, body: bytes) -> None:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            raise Reply(400, "BadArgumentError", "The request body is not valid JSON.") from None
        status, out = self._logs_request(workspace, payload, self.headers.get("Prefer", ""))
        self._json(status, out)

    def _logs_batch(self, body: bytes) -> None:
        try:
            payload = json.loads(body or b"null")
            requests = payload["requests"]
            assert isinstance(requests, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise Reply(400, "BadArgumentError", "The batch body must be {\"requests\": [...]}.") from None
        responses = []
        for item in requests:
            if not isinstance(item, dict):
                raise Reply(400, "BadArgumentError", "Each batch request must be an object.")
            headers = item.get("headers") or {}
            status, out = self._logs_request(str(item.get("workspace", "")), item.get("body"),
                                             str(headers.get("Prefer", "")) if isinstance(headers, dict) else "")
            responses.append({"id": item.get("id"), "status": status, "headers": {}, "body": out})
        self._json(200, {"responses": responses})
