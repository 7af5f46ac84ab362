"""Azure Monitor platform metrics of the Automation account: ``HybridWorkerPing``.

``GET .../Microsoft.Automation/automationAccounts/{a}/providers/Microsoft.Insights/metrics`` shaped
like the azure-rest-api-specs example Metrics_List (monitor, 2024-02-01, GetMetric.json): ``cost``,
``timespan``, ``interval``, ``namespace``, ``resourceregion`` and one ``value`` item per metric
whose ``timeseries`` are split by the dimensions named in ``$filter`` (``HybridWorker eq '*'``),
their names lower-cased in ``metadatavalues`` as the service answers. With a ``$filter`` only ``top``
series come back (default 10, as documented). PT1M only.

The pings come from the simulation: a worker pings with every 30-second poll while its Hybrid
Worker service can reach Automation (not under any scenario that silences Automation: agent_stopped,
service_stopped, vm_deallocated, site_down, outbound_blocked, ...), and a minute lands in the metrics
store 1 to 3 minutes after it ends (a bucket not landed yet has a timestamp and no value). Registered
in ``https.py`` before ``MachineRoutes``; everything else goes on to the other ARM routes.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from workers.emulator.server.arm import ArmRoutes
from workers.emulator.server.plumbing import Reply
from workers.emulator.simulation.clock import to_epoch
from workers.emulator.simulation.fleet import LAST_SEEN_SECONDS
from workers.emulator.simulation.machines import EXTENSION_VERSION
from workers.emulator.simulation.noise import uniform_int

METRIC = "HybridWorkerPing"
DIMENSIONS = {"hybridworkergroup": "HybridWorkerGroup", "hybridworker": "HybridWorker", "hybridworkerversion": "HybridWorkerVersion"}
OTHER_METRICS = ("TotalJob", "TotalUpdateDeploymentMachineRuns", "TotalUpdateDeploymentRuns")
PING_SALT = 7207
MAX_MINUTES = 24 * 60  # one day of PT1M per request, as far as the emulator goes
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_DT = "%Y-%m-%dT%H:%M:%SZ"


def landing_delay(seed: int, worker_index: int, minute: int) -> float:
    """Seconds after a minute ends before its pings are visible: 60 to 180 (the metric's latency)."""
    return 60.0 + 120.0 * uniform_int(seed, PING_SALT, worker_index, minute)


def pings_in_minute(sim: Any, w: Any, minute: int) -> int:
    """The worker's pings in the minute starting at epoch second ``minute * 60``: its 30-second polls
    after registration while no scenario silences its contact with Automation."""
    start = minute * 60
    first = start + (w.poll_phase - start) % LAST_SEEN_SECONDS
    silent = [s for s in sim._scenarios_by_worker.get(w.index, ()) if s.kind in sim.AUTOMATION_DOWN]
    registered = to_epoch(w.registered)
    return sum(
        1 for t in range(first, start + 60, LAST_SEEN_SECONDS)
        if t >= registered and not any(s.silences(t) for s in silent)
    )


def parse_filter(text: str) -> dict[str, str]:
    """``Dim eq 'v' and Dim eq '*'`` -> {dimension: value}. Only the account metric's dimensions."""
    found: dict[str, str] = {}
    if not text.strip():
        return found
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if m is None:
            raise Reply(400, "BadRequest", f"Invalid $filter: {text!r}. Expected clauses like \"HybridWorker eq '*'\".")
        name = DIMENSIONS.get(m.group(1).lower())
        if name is None:
            raise Reply(400, "BadRequest", f"Dimension '{m.group(1)}' is not valid for metric {METRIC}. "
                        f"Valid dimensions: {', '.join(DIMENSIONS.values())}.")
        found[name] = m.group(2).replace("''", "'")
    return found


def _timespan(text: str, now: datetime) -> tuple[datetime, datetime]:
    if not text:
        return now - timedelta(hours=1), now
    try:
        a, b = text.split("/")
        start = datetime.fromisoformat(a.replace("Z", "+00:00"))
        end = datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        raise Reply(400, "BadRequest", f"Invalid timespan '{text}': expected 'start/end' in ISO 8601.") from None
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    if end <= start:
        raise Reply(400, "BadRequest", f"Invalid timespan '{text}': the end must be after the start.")
    return start, end


class MetricRoutes(ArmRoutes):
    """``Microsoft.Insights/metrics`` of the Automation account; everything else to the next ``_arm``."""

    def _arm(self, segs: list[str], low: list[str], query: str) -> None:
        if len(low) == 11 and low[8:] == ["providers", "microsoft.insights", "metrics"] and low[5:7] == [
            "microsoft.automation", "automationaccounts"
        ]:
            return self._metrics(segs, low, query)
        return super()._arm(segs, low, query)

    def _metrics(self, segs: list[str], low: list[str], query: str) -> None:
        sim = self.emu.sim
        headers = self._take_read_token()  # the metrics API spends ARM's read budget like any read
        if low[1] != sim.subscription_id.lower():
            raise Reply(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        if low[3] != sim.resource_group.lower() or low[7] != sim.automation_account.lower():
            raise Reply(404, "ResourceNotFound", f"The Resource '{'/'.join(segs[4:8])}' was not found.")
        params = parse_qs(query, keep_blank_values=True)

        def one(name: str) -> str:
            return next((v[0] for k, v in params.items() if k.lower() == name.lower() and v), "")

        if not one("api-version"):
            raise Reply(400, "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.")
        names = [n.strip() for n in (one("metricnames") or METRIC).split(",") if n.strip()]
        for name in names:
            if name.lower() != METRIC.lower():
                raise Reply(400, "BadRequest",
                            f"Failed to find metric configuration for provider: Microsoft.Automation, resource Type: "
                            f"automationAccounts, metric: {name}, Valid metrics: {','.join((METRIC, *OTHER_METRICS))}")
        interval = one("interval") or "PT1M"
        if interval.upper() != "PT1M":
            raise Reply(400, "BadRequest", f"The emulator serves interval PT1M only, not {interval}.")
        wanted = {a.strip().lower() for a in (one("aggregation") or "total").split(",") if a.strip()}
        dims = parse_filter(one("$filter"))
        top_text = one("top") or "10"
        if not top_text.isdigit() or int(top_text) < 1:
            raise Reply(400, "BadRequest", f"Invalid top value '{top_text}'.")
        now = sim.clock.now()
        sim.ensure(now)
        start, end = _timespan(one("timespan"), now)
        m0 = to_epoch(start) // 60
        m1 = min(-(-to_epoch(end) // 60), m0 + MAX_MINUTES)
        account_id = "/" + "/".join(segs[:8])
        with sim.lock:  # the scenarios may change under a concurrent control request
            series = self._series(sim, now, m0, m1, dims, wanted) if dims else [self._total(sim, now, m0, m1, wanted)]
        if dims:
            series.sort(key=lambda s: (-s["_sum"], [m["value"] for m in s["metadatavalues"]]))
            series = series[: int(top_text)]
        for s in series:
            s.pop("_sum", None)
        body = {
            "cost": (m1 - m0) * max(1, len(series)),
            "timespan": f"{start.astimezone(UTC):{_DT}}/{end.astimezone(UTC):{_DT}}",
            "interval": "PT1M",
            "value": [{
                "id": f"{account_id}/providers/Microsoft.Insights/metrics/{METRIC}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": METRIC, "localizedValue": "Hybrid Worker Ping"},
                "displayDescription": "The number of pings from the hybrid worker",
                "unit": "Count",
                "timeseries": series,
                "errorCode": "Success",
            }],
            "namespace": "microsoft.automation/automationaccounts",
            "resourceregion": "westeurope",
        }
        return self._json(200, body, headers)

    @staticmethod
    def _point(minute: int, value: int | None, wanted: set[str]) -> dict[str, Any]:
        point: dict[str, Any] = {"timeStamp": datetime.fromtimestamp(minute * 60, tz=UTC).strftime(_DT)}
        if value is not None:  # a minute not landed yet (or without data) carries no value
            if "total" in wanted:
                point["total"] = float(value)
            if "count" in wanted:
                point["count"] = float(value)
            for agg in ("average", "minimum", "maximum"):
                if agg in wanted:
                    point[agg] = 1.0
        return point

    def _minutes(self, sim: Any, w: Any, now: datetime, m0: int, m1: int) -> list[int | None]:
        """Pings per minute of one worker, None where the minute has not landed or has none."""
        t_now = to_epoch(now)
        out: list[int | None] = []
        for m in range(m0, m1):
            landed = m * 60 + 60 + landing_delay(sim.seed, w.index, m) <= t_now
            n = pings_in_minute(sim, w, m) if landed else 0
            out.append(n or None)
        return out

    def _series(self, sim: Any, now: datetime, m0: int, m1: int, dims: dict[str, str], wanted: set[str]) -> list[dict[str, Any]]:
        split: dict[tuple[str, ...], list[int]] = {}
        for w in sim.workers:
            values = {
                "HybridWorkerGroup": w.group,
                "HybridWorker": w.name,
                "HybridWorkerVersion": w.agent_version if w.worker_type == "HybridV1" else EXTENSION_VERSION,
            }
            if any(v != "*" and v.lower() != values[d].lower() for d, v in dims.items()):
                continue
            counts = self._minutes(sim, w, now, m0, m1)
            if not any(counts):
                continue  # a dimension value without data in the timespan has no series
            key = tuple(values[d] for d in dims)
            acc = split.setdefault(key, [0] * (m1 - m0))
            for i, n in enumerate(counts):
                acc[i] += n or 0
        return [
            {
                "metadatavalues": [
                    {"name": {"value": d.lower(), "localizedValue": d.lower()}, "value": v} for d, v in zip(dims, key, strict=True)
                ],
                "data": [self._point(m0 + i, n or None, wanted) for i, n in enumerate(acc)],
                "_sum": sum(acc),
            }
            for key, acc in split.items()
        ]

    def _total(self, sim: Any, now: datetime, m0: int, m1: int, wanted: set[str]) -> dict[str, Any]:
        acc = [0] * (m1 - m0)
        for w in sim.workers:
            for i, n in enumerate(self._minutes(sim, w, now, m0, m1)):
                acc[i] += n or 0
        return {"metadatavalues": [], "data": [self._point(m0 + i, n or None, wanted) for i, n in enumerate(acc)]}
