"""The emulator's own control routes under ``/_emulator/``: scenarios, faults, clock, job truth.

Not part of Azure: tests and the demo use them to start a failure, inject faults, move a manual clock,
and read ground truth (which worker ran each job) that Azure does not expose.
"""
from __future__ import annotations

from typing import cast

from workers.emulator.server.plumbing import Reply, RequestBase
from workers.emulator.simulation import SimulationError


class ControlRoutes(RequestBase):
    """``/_emulator/scenarios``, ``/_emulator/faults``, ``/_emulator/clock`` and ``/_emulator/jobs``."""

    def _control(self, method: str, low: list[str], segs: list[str], body: bytes, query: str) -> None:
        emu, sim = self.emu, self.emu.sim
        if low == ["scenarios"] and method == "GET":
            return self._json(200, {"now": sim.clock.now().isoformat(), "value": sim.scenarios_view()})
        if low == ["scenarios"] and method == "POST":
            data = self._json_body(body)
            try:
                # start_scenario rejects a ``minutes`` that is not a number in range (SimulationError).
                minutes = cast(float, data.get("minutes"))
                s = sim.start_scenario(str(data.get("kind", "")), str(data.get("target", "")), minutes)
            except SimulationError as exc:
                raise Reply(400, "BadRequest", str(exc)) from exc
            view = next(v for v in sim.scenarios_view() if v["id"] == s.id)
            return self._json(201, view)
        if low == ["faults"] and method == "POST":
            data = self._json_body(body)
            try:
                fault = emu.inject_fault(str(data.get("kind", "")), data.get("count", 1), str(data.get("route", "any")))
            except ValueError as exc:
                raise Reply(400, "BadRequest", str(exc)) from exc
            return self._json(201, {"kind": fault.kind, "count": fault.remaining, "route": fault.route})
        if low == ["faults"] and method == "GET":
            with emu.fault_lock:
                queued = [{"kind": f.kind, "remaining": f.remaining, "route": f.route} for f in emu.faults]
            return self._json(200, {"value": queued, "fault_rate": emu.config.fault_rate})
        if low == ["faults"] and method == "DELETE":
            emu.clear_faults()
            return self._json(200, {"value": []})
        if low == ["clock"] and method == "GET":
            return self._json(200, {"now": sim.clock.now().isoformat(), "realtime": sim.clock.realtime})
        if low == ["clock"] and method == "POST":
            data = self._json_body(body)
            seconds = data.get("advance")
            if sim.clock.realtime:
                raise Reply(409, "Conflict", "The emulator runs on real time; its clock cannot be advanced.")
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 86400 * 31:
                raise Reply(400, "BadRequest", "'advance' must be a number of seconds between 0 and 2678400.")
            now = sim.clock.advance(float(seconds))
            return self._json(200, {"now": now.isoformat(), "realtime": False})
        if low == ["jobs"] and method == "GET":
            now = sim.clock.now()
            sim.ensure(now)
            t = now.timestamp()
            with sim.lock:
                jobs = [j for j in sim.jobs if j.created <= t]
            return self._json(200, {"value": [{
                "jobId": j.job_id, "runOn": j.run_on, "runbook": j.runbook,
                "worker": sim.workers[j.worker].name if j.worker is not None else None,
                "queuePressure": round(j.queue_pressure, 4), "runPressure": round(j.run_pressure, 4),
            } for j in jobs]})
        raise Reply(404, "NotFound", f"No control route {method} /_emulator/{'/'.join(segs)}.")
