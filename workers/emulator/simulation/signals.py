"""Log Analytics signals: Heartbeat, Perf and Event rows of the fleet, in the simulation's DuckDB.

Rows are generated per minute in chunks and stored in internal tables (``hb_raw``, ``perf_raw``,
``event_raw`` and the ``hrw_workers`` dimension), each with the time it is ingested (20 s to 3 min
later, like Log Analytics); the query layer exposes them under their real table and column names.
"""
from __future__ import annotations

import math
from typing import Any

import duckdb
import numpy as np

from workers.emulator.simulation.noise import normal, uniform
from workers.emulator.simulation.utilisation import UtilisationModel

TLS_DESCRIPTION = (
    "The certificate specified in the connection to {host} was not issued by a certificate authority used "
    "for Microsoft services. Contact your network administrator. The connection may be routed through a "
    "TLS-inspecting proxy."
)


class SignalGenerator(UtilisationModel):
    """Heartbeat/Perf/Event rows per worker and minute, shaped by the scenarios in force."""

    workspace_id: str
    con: duckdb.DuckDBPyConnection

    def _create_tables(self) -> None:
        c = self.con
        c.execute(
            """CREATE TABLE hrw_workers (widx INTEGER PRIMARY KEY, Computer VARCHAR, Category VARCHAR,
            OSType VARCHAR, OSName VARCHAR, OSMajorVersion VARCHAR, OSMinorVersion VARCHAR, Version VARCHAR,
            ComputerIP VARCHAR, ComputerPrivateIPs VARCHAR, ComputerEnvironment VARCHAR, SourceComputerId VARCHAR,
            Solutions VARCHAR, SCAgentChannel VARCHAR, SourceSystem VARCHAR, ResourceId VARCHAR,
            _ResourceId VARCHAR, SubscriptionId VARCHAR, ResourceGroup VARCHAR, ResourceProvider VARCHAR,
            ResourceType VARCHAR, Resource VARCHAR, VMUUID VARCHAR, MG VARCHAR, ManagementGroupName VARCHAR,
            CpuObject VARCHAR, CpuInstance VARCHAR, MemPctCounter VARCHAR, MemAvailCounter VARCHAR)"""
        )
        c.execute("CREATE TABLE hb_raw (t TIMESTAMP, widx INTEGER, ingest TIMESTAMP)")
        c.execute("CREATE TABLE perf_raw (t TIMESTAMP, widx INTEGER, kind TINYINT, v DOUBLE, ingest TIMESTAMP)")
        c.execute("CREATE TABLE event_raw (t TIMESTAMP, widx INTEGER, eid INTEGER, ingest TIMESTAMP)")
        cols: dict[str, list[Any]] = {name: [] for name in _WORKER_DIM_COLUMNS}
        for w in self.workers:
            rid = w.vm_resource_id.lower()
            parts = rid.split("/")
            windows = w.os_type == "Windows"
            values = (
                w.index, w.name, w.category, w.os_type,
                "Windows Server 2019 Datacenter" if windows else "Ubuntu", "10" if windows else "22",
                "0" if windows else "04", w.agent_version, w.ip, f'["{w.private_ip}"]',
                "Azure" if "microsoft.compute" in rid else "Non-Azure", w.source_computer_id,
                '"updates", "changeTracking"' if w.worker_type == "HybridV1" else "",
                "Direct", "OpsManager" if windows else "Linux", rid, rid,
                self.subscription_id if rid else "", parts[4] if len(parts) > 4 else "",
                parts[6].upper() if len(parts) > 6 else "", (parts[6] + "/" + parts[7]) if len(parts) > 7 else "",
                w.name, w.vm_uuid, "00000000-0000-0000-0000-000000000001", "AOI-" + self.workspace_id,
                w.cpu_object, w.cpu_instance,
                "% Committed Bytes In Use" if windows else "% Used Memory",
                "Available MBytes" if windows else "Available MBytes Memory",
            )
            for name, value in zip(_WORKER_DIM_COLUMNS, values, strict=True):
                cols[name].append(value)
        frame = {name: np.asarray(values, dtype=np.int32 if name == "widx" else object)
                 for name, values in cols.items()}
        self._insert("hrw_workers", frame)

    def _generate_signals(self, t0: int, t1: int) -> None:
        n_w = len(self.workers)
        minutes_per_chunk = max(1, 1_500_000 // max(n_w, 1))
        m0, m1 = t0 // 60, t1 // 60
        for c0 in range(m0, m1, minutes_per_chunk):
            c1 = min(m1, c0 + minutes_per_chunk)
            self._generate_chunk(c0, c1)

    def _ingest_delay(self, salt: int, widx: np.ndarray, key: np.ndarray) -> np.ndarray:
        """20 s to 3 min, most under a minute (log-normal, clipped)."""
        z = normal(self.seed, salt, widx, key)
        return np.clip(20.0 + np.exp(math.log(25.0) + 0.8 * z), 20.0, 180.0)

    def _generate_chunk(self, m0: int, m1: int) -> None:
        n_w = len(self.workers)
        minutes = np.arange(m0, m1, dtype=np.int64)
        widx = np.tile(np.arange(n_w, dtype=np.int64), len(minutes))
        minute = np.repeat(minutes, n_w)
        t_hb = minute * 60 + self.hb_phase[widx]
        agent_down = self._down_mask(self.AGENT_DOWN, widx, t_hb)
        hb_down = agent_down | self._down_mask(("tls_intercepted",), widx, t_hb)

        # Heartbeat: one row per worker per minute while the agent can upload.
        keep = ~hb_down
        hw, ht = widx[keep], t_hb[keep]
        hi = ht + self._ingest_delay(5, hw, ht)
        self._insert("hb_raw", {"t": _ts(ht), "widx": hw.astype(np.int32), "ingest": _ts(hi)})

        # Perf: CPU, memory % and available memory once a minute (sampled at the minute boundary + 5 s).
        t_pf = minute * 60 + 5
        perf_down = self._down_mask(self.AGENT_DOWN + ("tls_intercepted",), widx, t_pf)
        keep = ~perf_down
        pw, pm, pt = widx[keep], minute[keep], t_pf[keep]
        cpu, mem = self.utilisation(pw, pm)
        avail = self.total_mb[pw] * (1.0 - mem / 100.0)
        k = len(pw)
        perf_w = np.concatenate([pw, pw, pw])
        perf_t = np.concatenate([pt, pt, pt])
        kind = np.concatenate([np.zeros(k), np.ones(k), np.full(k, 2)]).astype(np.int8)
        vals = np.round(np.concatenate([cpu, mem, avail]), 3)
        ingest = np.tile(pt + self._ingest_delay(6, pw, pt), 3)  # the three counters travel together
        self._insert("perf_raw", {"t": _ts(perf_t), "widx": perf_w.astype(np.int32), "kind": kind,
                                  "v": vals, "ingest": _ts(ingest)})

        # Event: TLS interception (4502 every 5 minutes while active) and rare benign agent events.
        # Event 4502 is written by the Log Analytics agent (healthservice) on Windows: only V1 Windows
        # workers have it; a V2 or Linux machine under TLS interception just goes silent.
        tls = self._down_mask(("tls_intercepted",), widx, minute * 60 + 17)
        tls &= ((minute + widx) % 5 == 0) & self.is_windows[widx] & self.is_v1[widx]
        benign = (uniform(self.seed, 8, widx, minute) < 1.0 / 360.0) & ~agent_down & self.is_windows[widx]
        ev = tls | benign
        if ev.any():
            ew, et = widx[ev], minute[ev] * 60 + 17
            eid = np.where(tls[ev], 4502, np.where(uniform(self.seed, 9, ew, et) < 0.5, 1210, 7036)).astype(np.int32)
            ei = et + self._ingest_delay(10, ew, et)
            self._insert("event_raw", {"t": _ts(et), "widx": ew.astype(np.int32), "eid": eid, "ingest": _ts(ei)})

    def _insert(self, table: str, columns: dict[str, np.ndarray]) -> None:
        if len(next(iter(columns.values()))) == 0:
            return
        frame = columns  # duckdb reads a dict of numpy arrays through a replacement scan
        cols = ", ".join(columns)
        self.con.register("_frame", frame)
        try:
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _frame")
        finally:
            self.con.unregister("_frame")


_WORKER_DIM_COLUMNS = (
    "widx", "Computer", "Category", "OSType", "OSName", "OSMajorVersion", "OSMinorVersion", "Version",
    "ComputerIP", "ComputerPrivateIPs", "ComputerEnvironment", "SourceComputerId", "Solutions", "SCAgentChannel",
    "SourceSystem", "ResourceId", "_ResourceId", "SubscriptionId", "ResourceGroup", "ResourceProvider",
    "ResourceType", "Resource", "VMUUID", "MG", "ManagementGroupName", "CpuObject", "CpuInstance",
    "MemPctCounter", "MemAvailCounter",
)


def _ts(seconds: np.ndarray) -> np.ndarray:
    return (np.asarray(seconds, dtype=np.float64) * 1_000_000).astype(np.int64).astype("datetime64[us]")
