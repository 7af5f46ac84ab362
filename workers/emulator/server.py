"""The emulator's HTTPS server: Automation ARM routes, Log Analytics query, Entra token, control.

One port on 127.0.0.1 serves everything, TLS from a local ``trustme`` CA so the real SDK clients run
unchanged (bearer tokens are refused over plain http). Every route but the Entra ones needs a token
issued by the emulated token endpoint. Errors are Azure-shaped JSON. Faults (429, 503, 504, slow,
partial, malformed, reset, html) can be injected on demand or at a random rate.
"""
from __future__ import annotations

import bisect
import json
import random
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import trustme

from workers.emulator.filters import Clause, FilterError, parse_job_filter
from workers.emulator.logs import QueryError, QueryTimeout, parse_timespan, render_kind, run_query
from workers.emulator.simulation import FleetSimulation, SimGroup, SimJob, SimulationError, SimWorker

FAULT_KINDS = ("429", "503", "504", "slow", "partial", "malformed", "reset", "html")
FAULT_ROUTES = ("arm", "logs", "any")
LOGS_AUDIENCE = "https://api.loganalytics.io"
JOB_RETENTION_SECONDS = 30 * 86400  # Azure Automation keeps job records for 30 days


@dataclass
class EmulatorConfig:
    page_size: int = 100
    fault_rate: float = 0.0
    random_fault_kinds: tuple[str, ...] = ("429", "503", "504", "slow", "partial", "reset")
    retry_after: float = 1.0
    slow_seconds: float = 2.0
    max_rows: int = 500_000
    query_timeout: float = 180.0  # Log Analytics' default server timeout; Prefer: wait=N lowers it
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    token_lifetime: int = 3599
    request_log: Path | None = None
    fault_seed: int = 0


@dataclass
class Fault:
    kind: str
    route: str
    remaining: int


@dataclass
class _Auth:
    tokens: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, lifetime: int) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            now = time.time()
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
            self.tokens[token] = now + lifetime
        return token

    def valid(self, token: str) -> bool:
        with self.lock:
            exp = self.tokens.get(token)
        return exp is not None and exp > time.time()


def _arm_dt(dt: datetime | None, digits: int = 7) -> str | None:
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    frac = f"{dt.microsecond:06d}0"[:digits]
    return f"{dt:%Y-%m-%dT%H:%M:%S}" + (f".{frac}" if digits else "") + "+00:00"


def _from_epoch(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that does not trust the CA, or hangs up mid-handshake, is the client's problem:
        # no traceback on the emulator's stderr for it.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class EmulatorServer:
    """The HTTPS emulator around one ``FleetSimulation``; ``start()`` serves on a background thread."""

    def __init__(self, sim: FleetSimulation, *, config: EmulatorConfig | None = None, port: int = 0,
                 pki_dir: Path | None = None) -> None:
        self.sim = sim
        self.config = config or EmulatorConfig()
        cfg = self.config
        rng = random.Random(sim.seed * 7919 + 1)
        cfg.tenant_id = cfg.tenant_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cfg.client_id = cfg.client_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cfg.client_secret = cfg.client_secret or secrets.token_urlsafe(24)
        self.auth = _Auth()
        self._registered: dict[int, str] = {}
        self.faults: deque[Fault] = deque()
        self.fault_lock = threading.Lock()
        self.fault_rng = random.Random(cfg.fault_seed or sim.seed)
        self.log_lock = threading.Lock()
        self._log_file = open(cfg.request_log, "a", encoding="utf-8") if cfg.request_log else None  # noqa: SIM115

        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.pki_dir = Path(pki_dir) if pki_dir else None
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.ssl_context)
        self.ca_bundle: Path | None = None
        if self.pki_dir:
            self.pki_dir.mkdir(parents=True, exist_ok=True)
            self.ca_bundle = self.pki_dir / "ca.pem"
            self.ca.cert_pem.write_to_path(str(self.ca_bundle))

        self.httpd = _Server(("127.0.0.1", port), _Handler)
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

    # ------------------------------------------------------------------------------ connection

    @property
    def arm_prefix(self) -> str:
        s = self.sim
        return (f"/subscriptions/{s.subscription_id}/resourceGroups/{s.resource_group}/providers/"
                f"Microsoft.Automation/automationAccounts/{s.automation_account}")

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
        tmp.write_text(json.dumps(self.connection(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def registered_text(self, worker: SimWorker) -> str:
        """Registration times never change: format each once (worker lists of 10,000 stay fast)."""
        text = self._registered.get(worker.index)
        if text is None:
            text = self._registered[worker.index] = _arm_dt(worker.registered) or ""
        return text

    # ---------------------------------------------------------------------------------- faults

    def inject_fault(self, kind: str, count: int = 1, route: str = "any") -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if route not in FAULT_ROUTES:
            raise ValueError(f"unknown fault route {route!r}; expected one of {', '.join(FAULT_ROUTES)}")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10_000:
            raise ValueError("count must be an integer between 1 and 10000")
        fault = Fault(kind, route, count)
        with self.fault_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.fault_lock:
            self.faults.clear()

    def take_fault(self, route: str) -> str | None:
        """The fault to apply to this request, if any (queued first, then the random rate)."""
        with self.fault_lock:
            for fault in self.faults:
                if fault.route not in ("any", route):
                    continue
                if fault.kind == "partial" and route != "logs":
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault.kind
            if self.config.fault_rate > 0 and self.fault_rng.random() < self.config.fault_rate:
                kinds = [k for k in self.config.random_fault_kinds if k != "partial" or route == "logs"]
                return self.fault_rng.choice(kinds) if kinds else None
        return None

    def log(self, entry: dict[str, Any]) -> None:
        if not self._log_file:
            return
        line = json.dumps(entry, default=str)
        with self.log_lock:
            if self._log_file:
                self._log_file.write(line + "\n")
                self._log_file.flush()


class _Reply(Exception):
    """Raised inside a route to answer at once with an Azure-shaped error."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message}}
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "AzureEmulator/1.0"
    sys_version = ""

    def setup(self) -> None:
        # TLS handshake here, in the connection's own thread, so a slow client cannot block accept().
        self.request.settimeout(30)
        # Headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK add ~40 ms each.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = self.server.emulator.ssl_context.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    # ------------------------------------------------------------------------------- plumbing

    @property
    def emu(self) -> EmulatorServer:
        return self.server.emulator

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._status = status
        self._write_log()  # before the reply leaves, so a client that got the reply also finds the log line
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # Headers and body in one TLS record write (end_headers() would flush the headers on their own).
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        self.flush_headers()

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8", headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > 10_000_000:
            raise _Reply(413, "RequestEntityTooLarge", "The request body is too large.")
        return self.rfile.read(length) if length else b""

    def _origin(self) -> str:
        host = self.headers.get("Host") or f"127.0.0.1:{self.emu.port}"
        return f"https://{host}"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._status = 0
        self._kql: str | None = None
        self._fault: str | None = None
        self._partial = False
        self._logged = False
        self._started = time.perf_counter()
        parts = urlsplit(self.path)
        self._log_path, self._log_query = parts.path, parts.query
        self._method = method
        try:
            body = self._read_body() if method in ("POST", "PUT", "PATCH") else b""
            self._route(method, parts.path, parts.query, body)
        except _Reply as reply:
            self._json(reply.status, reply.body, reply.headers)
        except _Reset:
            pass
        except Exception as exc:  # noqa: BLE001 - the emulator answers like Azure, never a traceback
            self._json(500, {"error": {"code": "InternalServerError", "message": f"emulator error: {exc}"}})
        finally:
            self._write_log()

    def _write_log(self) -> None:
        if self._logged:
            return
        self._logged = True
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(),
            "method": self._method,
            "path": self._log_path,
            "query": self._log_query,
            "status": self._status,
            "ms": round((time.perf_counter() - self._started) * 1000, 2),
        }
        if self._kql is not None:
            entry["kql"] = self._kql
        if self._fault:
            entry["fault"] = self._fault
        self.emu.log(entry)

    # --------------------------------------------------------------------------------- routing

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
                raise _Reply(405, "MethodNotAllowed", f"The emulator serves only GET on ARM routes, not {method}.")
            self._maybe_fault("arm")
            return self._arm(segs, low, query)
        if low[:1] == ["v1"] and method == "POST":
            if len(low) == 4 and low[1] == "workspaces" and low[3] == "query":
                self._maybe_fault("logs")
                return self._logs_query(segs[2], body)
            if low[1:] == ["$batch"]:
                self._maybe_fault("logs")
                return self._logs_batch(body)
        raise _Reply(404, "NotFound", f"No route for {method} {path}.")

    def _require_token(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Reply(401, "AuthenticationFailed",
                         "Authentication failed. The 'Authorization' header is missing.")
        if not self.emu.auth.valid(token.strip()):
            raise _Reply(401, "AuthenticationFailed",
                         "Authentication failed. The access token is invalid or has expired.")

    # ----------------------------------------------------------------------------------- faults

    def _maybe_fault(self, route: str) -> None:
        kind = self.emu.take_fault(route)
        if kind is None:
            return
        self._fault = kind
        cfg = self.emu.config
        if kind == "429":
            ra = cfg.retry_after
            raise _Reply(429, "TooManyRequests" if route == "arm" else "ThrottledError",
                         "The request was throttled. Retry after the number of seconds in Retry-After.",
                         {"Retry-After": str(int(ra)) if float(ra).is_integer() else str(ra),
                          "x-ms-ratelimit-remaining-subscription-reads": "0"})
        if kind == "503":
            raise _Reply(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        if kind == "504":
            raise _Reply(504, "GatewayTimeout", "The gateway did not receive a response in time.")
        if kind == "slow":
            wait = _prefer_wait(self.headers.get("Prefer", "")) if route == "logs" else None
            if wait is not None and wait < cfg.slow_seconds:
                # Log Analytics gives up at the client's Prefer: wait=N with a 504.
                time.sleep(wait)
                raise _Reply(504, "GatewayTimeout", f"The query did not finish within the requested wait of {wait} s.")
            time.sleep(cfg.slow_seconds)
            return
        if kind == "partial":
            self._partial = True
            return
        if kind == "malformed":
            body = b'{"value": [{"id": "/subscriptions/' if route == "arm" else b'{"tables": [{"name": "Prim'
            self._send(200, body, "application/json; charset=utf-8")
            raise _Reset()
        if kind == "html":
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
            raise _Reset()
        if kind == "reset":
            self.close_connection = True
            self._write_log()
            try:
                # Linger 0: close() sends a TCP RST, like a proxy dropping the connection.
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.request.close()
            except OSError:
                pass  # the client hung up first: the connection is gone either way
            raise _Reset()

    # ------------------------------------------------------------------------------------ entra

    def _openid(self, tenant: str) -> None:
        base = f"{self._origin()}/{tenant}"
        self._json(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "EU",
        })

    def _token(self, tenant: str, body: bytes) -> None:
        cfg = self.emu.config
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if tenant.lower() != cfg.tenant_id.lower():
            self._json(400, {"error": "invalid_request",
                             "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                             "error_codes": [90002]})
            return
        if form.get("grant_type") != "client_credentials":
            self._json(400, {"error": "unsupported_grant_type",
                             "error_description": "AADSTS70003: The app requested an unsupported grant type.",
                             "error_codes": [70003]})
            return
        if form.get("client_id") != cfg.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), cfg.client_secret
        ):
            self._json(401, {"error": "invalid_client",
                             "error_description": "AADSTS7000215: Invalid client secret provided.",
                             "error_codes": [7000215]})
            return
        token = self.emu.auth.issue(cfg.token_lifetime)
        self._json(200, {"token_type": "Bearer", "expires_in": cfg.token_lifetime,
                         "ext_expires_in": cfg.token_lifetime, "access_token": token})

    # -------------------------------------------------------------------------------------- ARM

    def _arm(self, segs: list[str], low: list[str], query: str) -> None:
        sim = self.emu.sim
        if len(low) < 8 or low[2] != "resourcegroups" or low[4] != "providers" \
                or low[5] != "microsoft.automation" or low[6] != "automationaccounts":
            raise _Reply(404, "NotFound", f"The resource path '/{'/'.join(segs)}' is not served by the emulator.")
        if low[1] != sim.subscription_id.lower():
            raise _Reply(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        if low[3] != sim.resource_group.lower():
            raise _Reply(404, "ResourceGroupNotFound", f"Resource group '{segs[3]}' could not be found.")
        if low[7] != sim.automation_account.lower():
            raise _Reply(404, "ResourceNotFound",
                         f"The Resource 'Microsoft.Automation/automationAccounts/{segs[7]}' under resource group "
                         f"'{segs[3]}' was not found.")
        params = parse_qs(query, keep_blank_values=True)
        api_version = (params.get("api-version") or [""])[0]
        if not api_version:
            raise _Reply(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
        skip_text = (params.get("$skip") or ["0"])[0]
        if not skip_text.isdigit():
            raise _Reply(400, "BadRequest", f"Invalid $skip value '{skip_text}'.")
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
                raise _Reply(404, "NotFound", f"Hybrid Runbook Worker Group '{rest[1]}' was not found.")
            if len(rest) == 2:
                return self._json(200, self._group_json(group))
            if rest_low[2] == "hybridrunbookworkers" and len(rest) == 3:
                self._no_filter(filter_text)
                members = [sim.workers[i] for i in group.members]
                return self._page(members, skip, path, api_version, filter_text,
                                  lambda w: self._worker_json(w, now))
            if rest_low[2] == "hybridrunbookworkers" and len(rest) == 4:
                worker = sim.worker_by_id(rest[3])
                if worker is None or worker.group != group.name:
                    raise _Reply(404, "NotFound", f"Hybrid Runbook Worker '{rest[3]}' was not found.")
                return self._json(200, self._worker_json(worker, now))
        if rest_low[:1] == ["jobs"]:
            if len(rest) == 1:
                try:
                    clauses = parse_job_filter(filter_text)
                except FilterError as exc:
                    raise _Reply(400, "BadRequest", f"Invalid $filter '{filter_text}': {exc}.") from exc
                return self._list_jobs(clauses, skip, path, api_version, filter_text, now)
            job = sim.job(rest[1])
            if job is None or not now.timestamp() - JOB_RETENTION_SECONDS <= job.created <= now.timestamp():
                raise _Reply(404, "NotFound", "The job was not found.")
            if len(rest) == 2:
                return self._json(200, self._job_json(job, now, full=True))
            if len(rest) == 3 and rest_low[2] == "output":
                text = "" if job.status_at(now.timestamp()) != "Completed" else f"{job.runbook} finished.\n"
                return self._send(200, text.encode(), "text/plain; charset=utf-8")
            if len(rest) == 3 and rest_low[2] == "streams":
                return self._json(200, {"value": self._streams(job, now), "nextLink": None})
        raise _Reply(404, "NotFound", f"The resource path '{path}' is not served by the emulator.")

    def _no_filter(self, filter_text: str) -> None:
        if filter_text.strip():
            raise _Reply(400, "BadRequest", f"Invalid $filter '{filter_text}': this list supports no $filter.")

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
        self._json(200, {"value": page, "nextLink": next_link},
                   {"x-ms-ratelimit-remaining-subscription-reads": "249"})

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
                "createdBy": "ops@contoso.com", "createdByType": "User", "createdAt": _arm_dt(g.created),
                "lastModifiedBy": "ops@contoso.com", "lastModifiedByType": "User",
                "lastModifiedAt": _arm_dt(g.created),
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
                "lastSeenDateTime": _arm_dt(self.emu.sim.last_seen(w, now), 3),
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
            "creationTime": _arm_dt(_from_epoch(job.created)),
            "startTime": _arm_dt(_from_epoch(started)),
            "endTime": _arm_dt(_from_epoch(ended)) if terminal else None,
            "lastModifiedTime": _arm_dt(_from_epoch(job.last_modified_at(t))),
            "runOn": job.run_on,
            "jobRuntimeEnvironment": {"runtimeEnvironmentName": job.runtime},
        }
        if full:
            props.update({
                "statusDetails": "None",
                "exception": job.exception or None if terminal else None,
                "lastStatusModifiedTime": _arm_dt(_from_epoch(job.last_modified_at(t))),
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
            "properties": {"jobStreamId": sid, "time": _arm_dt(_from_epoch(job.ended)), "streamType": "Error",
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
        for c in clauses:
            jobs = [j for j in jobs if _matches(j, c, t)]
        jobs.reverse()  # newest first, like the portal and the service
        self._page(jobs, skip, path, api_version, filter_text, lambda j: self._job_json(j, now))

    # ------------------------------------------------------------------------------------- logs

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
            wait = _prefer_wait(prefer)
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
            raise _Reply(400, "BadArgumentError", "The request body is not valid JSON.") from None
        status, out = self._logs_request(workspace, payload, self.headers.get("Prefer", ""))
        self._json(status, out)

    def _logs_batch(self, body: bytes) -> None:
        try:
            payload = json.loads(body or b"null")
            requests = payload["requests"]
            assert isinstance(requests, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise _Reply(400, "BadArgumentError", "The batch body must be {\"requests\": [...]}.") from None
        responses = []
        for item in requests:
            if not isinstance(item, dict):
                raise _Reply(400, "BadArgumentError", "Each batch request must be an object.")
            headers = item.get("headers") or {}
            status, out = self._logs_request(str(item.get("workspace", "")), item.get("body"),
                                             str(headers.get("Prefer", "")) if isinstance(headers, dict) else "")
            responses.append({"id": item.get("id"), "status": status, "headers": {}, "body": out})
        self._json(200, {"responses": responses})

    # ---------------------------------------------------------------------------------- control

    def _control(self, method: str, low: list[str], segs: list[str], body: bytes, query: str) -> None:
        emu, sim = self.emu, self.emu.sim
        if low == ["scenarios"] and method == "GET":
            return self._json(200, {"now": sim.clock.now().isoformat(), "value": sim.scenarios_view()})
        if low == ["scenarios"] and method == "POST":
            data = self._json_body(body)
            try:
                s = sim.start_scenario(str(data.get("kind", "")), str(data.get("target", "")), data.get("minutes"))
            except SimulationError as exc:
                raise _Reply(400, "BadRequest", str(exc)) from exc
            view = next(v for v in sim.scenarios_view() if v["id"] == s.id)
            return self._json(201, view)
        if low == ["faults"] and method == "POST":
            data = self._json_body(body)
            try:
                fault = emu.inject_fault(str(data.get("kind", "")), data.get("count", 1), str(data.get("route", "any")))
            except ValueError as exc:
                raise _Reply(400, "BadRequest", str(exc)) from exc
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
                raise _Reply(409, "Conflict", "The emulator runs on real time; its clock cannot be advanced.")
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 86400 * 31:
                raise _Reply(400, "BadRequest", "'advance' must be a number of seconds between 0 and 2678400.")
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
        raise _Reply(404, "NotFound", f"No control route {method} /_emulator/{'/'.join(segs)}.")

    def _json_body(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise _Reply(400, "BadRequest", "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise _Reply(400, "BadRequest", "The body must be a JSON object.")
        return data


class _Reset(Exception):
    """The response was already sent (or deliberately not): skip the normal reply."""

    def __init__(self) -> None:
        super().__init__("reply already sent, or connection deliberately reset")


def _prefer_wait(prefer: str) -> float | None:
    for part in prefer.split(","):
        key, _, value = part.strip().partition("=")
        if key.lower() == "wait":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


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
