"""HTTP plumbing of the emulator: TLS per connection, replies, dispatch, faults and the request log.

``RequestBase`` does everything but routing: it wraps the socket in TLS, turns ``Reply`` into an
Azure-shaped JSON error (and any other exception into a 500), applies injected faults, and writes one
request-log line per request. The route families build on it; ``https.EmulatorHandler`` routes.
"""
from __future__ import annotations

import json
import socket
import ssl
import struct
import sys
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from workers.emulator.server.state import EmulatorState


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorState

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that does not trust the CA, or hangs up mid-handshake, is the client's problem:
        # no traceback on the emulator's stderr for it.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class Reply(Exception):
    """Raised inside a route to answer at once with an Azure-shaped error."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message}}
        self.headers = headers or {}


class Reset(Exception):
    """The response was already sent (or deliberately not): skip the normal reply."""

    def __init__(self) -> None:
        super().__init__("reply already sent, or connection deliberately reset")


def prefer_wait(prefer: str) -> float | None:
    for part in prefer.split(","):
        key, _, value = part.strip().partition("=")
        if key.lower() == "wait":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


class RequestBase(BaseHTTPRequestHandler):
    """One connection's request handling, minus the routes (``_route``, supplied by the handler)."""

    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer
    server_version = "AzureEmulator/1.0"
    sys_version = ""
    # BaseHTTPRequestHandler's private header buffer (send_header fills it); typeshed omits it.
    _headers_buffer: list[bytes]

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
    def emu(self) -> EmulatorState:
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
            raise Reply(413, "RequestEntityTooLarge", "The request body is too large.")
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
        except Reply as reply:
            self._json(reply.status, reply.body, reply.headers)
        except Reset:
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

    def _route(self, method: str, path: str, query: str, body: bytes) -> None:
        """Answer one request (the emulator's handler routes it to its family)."""
        raise NotImplementedError

    def _json_body(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise Reply(400, "BadRequest", "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise Reply(400, "BadRequest", "The body must be a JSON object.")
        return data

    # ----------------------------------------------------------------------------------- faults

    def _forbidden(self, route: str) -> Reply:
        """The 403 Azure sends a principal without the role: Log Analytics' or ARM's body."""
        if route == "logs":
            return Reply(403, "InsufficientAccessError",
                         "The provided credentials have insufficient access to perform the requested operation")
        segs = [s for s in self._log_path.split("/") if s]
        low = [s.lower() for s in segs]
        at = low.index("providers") if "providers" in low else len(segs)
        kinds = segs[at + 1: at + 2] + segs[at + 2::2]  # namespace, then every resource type
        action = "/".join(kinds + ["read"]) if kinds else "Microsoft.Resources/subscriptions/read"
        client = self.emu.config.client_id
        return Reply(403, "AuthorizationFailed",
                     f"The client '{client}' with object id '{client}' does not have authorization to perform action "
                     f"'{action}' over scope '{'/' + '/'.join(segs[:at + 4])}' or the scope is invalid. If access was "
                     "recently granted, please refresh your credentials.")

    def _maybe_fault(self, route: str) -> None:
        kind = self.emu.take_fault(route)
        if kind is None:
            return
        self._fault = kind
        cfg = self.emu.config
        if kind == "429":
            ra = cfg.retry_after
            raise Reply(429, "TooManyRequests" if route == "arm" else "ThrottledError",
                        "The request was throttled. Retry after the number of seconds in Retry-After.",
                        {"Retry-After": str(int(ra)) if float(ra).is_integer() else str(ra),
                         "x-ms-ratelimit-remaining-subscription-reads": "0"})
        if kind == "403":
            raise self._forbidden(route)
        if kind == "503":
            raise Reply(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        if kind == "504":
            raise Reply(504, "GatewayTimeout", "The gateway did not receive a response in time.")
        if kind == "slow":
            wait = prefer_wait(self.headers.get("Prefer", "")) if route == "logs" else None
            if wait is not None and wait < cfg.slow_seconds:
                # Log Analytics gives up at the client's Prefer: wait=N with a 504.
                time.sleep(wait)
                raise Reply(504, "GatewayTimeout", f"The query did not finish within the requested wait of {wait} s.")
            time.sleep(cfg.slow_seconds)
            return
        if kind == "partial":
            self._partial = True
            return
        if kind == "malformed":
            body = b'{"value": [{"id": "/subscriptions/' if route == "arm" else b'{"tables": [{"name": "Prim'
            self._send(200, body, "application/json; charset=utf-8")
            raise Reset()
        if kind == "html":
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
            raise Reset()
        if kind == "reset":
            self.close_connection = True
            self._write_log()
            try:
                # Linger 0: close() sends a TCP RST, like a proxy dropping the connection.
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.request.close()
            except OSError:
                pass  # the client hung up first: the connection is gone either way
            raise Reset()
