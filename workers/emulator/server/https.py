"""The emulator's HTTPS server: one port on 127.0.0.1 for every route, on a background thread.

``EmulatorHandler`` routes each request to its family (Entra, ARM, Log Analytics, control) after the
token check; ``EmulatorServer`` binds the socket, runs it, and writes the connection file a client
needs (endpoints, credentials, CA bundle).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from workers.emulator.server.config import LOGS_AUDIENCE, EmulatorConfig
from workers.emulator.server.control import ControlRoutes
from workers.emulator.server.entra import EntraRoutes
from workers.emulator.server.log_analytics import LogAnalyticsRoutes
from workers.emulator.server.machines import MachineRoutes
from workers.emulator.server.metrics import MetricRoutes
from workers.emulator.server.plumbing import EmulatorHTTPServer, Reply
from workers.emulator.server.state import EmulatorState
from workers.emulator.simulation import FleetSimulation


class EmulatorHandler(EntraRoutes, MetricRoutes, MachineRoutes, LogAnalyticsRoutes, ControlRoutes):  # both extend ArmRoutes
    """Routes one request: Entra needs no token; control, ARM and Log Analytics do."""

    def _route(self, method: str, path: str, query: str, body: bytes) -> None:
        segs = [s for s in path.split("/") if s]
        low = [s.lower() for s in segs]
        # Entra (no token needed): discovery and token.
        if len(low) >= 3 and low[1:] == ["v2.0", ".well-known", "openid-configuration"] and method == "GET":
            return self._openid(segs[0])
        if len(low) == 4 and low[1:] == ["oauth2", "v2.0", "token"] and method == "POST":
            return self._token(segs[0], body)
        self._require_token()
        if low and low[0] == "_emulator":
            return self._control(method, low[1:], segs[1:], body, query)
        if low[:1] == ["subscriptions"]:
            if method != "GET":
                raise Reply(405, "MethodNotAllowed", f"The emulator serves only GET on ARM routes, not {method}.")
            self._maybe_fault("arm")
            return self._arm(segs, low, query)
        if low[:1] == ["v1"] and method == "POST":
            if len(low) == 4 and low[1] == "workspaces" and low[3] == "query":
                self._maybe_fault("logs")
                return self._logs_query(segs[2], body)
            if low[1:] == ["$batch"]:
                self._maybe_fault("logs")
                return self._logs_batch(body)
        raise Reply(404, "NotFound", f"No route for {method} {path}.")


class EmulatorServer(EmulatorState):
    """The HTTPS emulator around one ``FleetSimulation``; ``start()`` serves on a background thread."""

    def __init__(self, sim: FleetSimulation, *, config: EmulatorConfig | None = None, port: int = 0,
                 pki_dir: Path | None = None) -> None:
        super().__init__(sim, config=config, pki_dir=pki_dir)
        self.httpd = EmulatorHTTPServer(("127.0.0.1", port), EmulatorHandler)
        self.httpd.emulator = self
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="azure-emulator", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()
        if self._log_file:
            with self.log_lock:
                self._log_file.close()
                self._log_file = None

    def connection(self) -> dict[str, str]:
        return {
            "arm_endpoint": self.url,
            "logs_endpoint": self.url,
            "logs_audience": LOGS_AUDIENCE,
            "authority_host": self.url,
            "ca_bundle": str(self.ca_bundle) if self.ca_bundle else "",
            "tenant_id": self.config.tenant_id,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
            "subscription_id": self.sim.subscription_id,
            "resource_group": self.sim.resource_group,
            "automation_account": self.sim.automation_account,
            "workspace_id": self.sim.workspace_id,
        }

    def write_connection_file(self, path: Path) -> Path:
        """Write the connection JSON (and the CA PEM next to it when no pki dir was given)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.ca_bundle is None:
            self.ca_bundle = path.with_name(path.name + ".ca.pem")
            self.ca.cert_pem.write_to_path(str(self.ca_bundle))
        tmp = path.with_name(path.name + ".tmp")
        # It holds a client secret: 0600 from the moment it exists (the rename keeps the mode).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a leftover .tmp keeps its old mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self.connection(), indent=2) + "\n")
        tmp.replace(path)
        return path
