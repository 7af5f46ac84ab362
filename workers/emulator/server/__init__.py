"""The emulator's HTTPS server: Automation ARM routes, Log Analytics query, Entra token, control.

One port on 127.0.0.1 serves everything, TLS from a local ``trustme`` CA so the real SDK clients run
unchanged (bearer tokens are refused over plain http). Every route but the Entra ones needs a token
issued by the emulated token endpoint. Errors are Azure-shaped JSON. Faults (429, 503, 504, slow,
partial, malformed, reset, html) can be injected on demand or at a random rate.

Modules: ``config`` (settings), ``state`` (credentials, tokens, TLS, request log) with ``faults``
(the fault queue), ``plumbing`` (per-request HTTP handling and fault replies), one module per route
family (``entra``, ``arm`` with its ``odata`` ``$filter`` parser, ``log_analytics`` over the ``kql``
engine, ``control``), and ``https`` (the router and ``EmulatorServer``).
"""
from __future__ import annotations

from workers.emulator.server.config import LOGS_AUDIENCE, EmulatorConfig
from workers.emulator.server.faults import FAULT_KINDS, FAULT_ROUTES, Fault
from workers.emulator.server.https import EmulatorServer

__all__ = ["FAULT_KINDS", "FAULT_ROUTES", "LOGS_AUDIENCE", "EmulatorConfig", "EmulatorServer", "Fault"]
