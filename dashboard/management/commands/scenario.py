"""``manage.py scenario KIND TARGET [--minutes N]``: start a failure in the running emulator (``make demo``).

KIND is one of the emulator's scenarios (``agent_stopped``, ``outbound_blocked``, ``tls_intercepted``,
``under_spec``, ``site_down``, ``flapping``; docs/emulator.md), TARGET a worker or a group name. The
command reads the emulator's connection file (``var/emulator.json``, or ``--connection-file``), fetches
an OAuth token from the emulator's Entra route with the file's client id and secret, and posts the
scenario to the control API (``POST /_emulator/scenarios``). The emulator judges the kind, the target
and the minutes; its answer (a 400 names what is wrong) is shown as is.

Standard library only (urllib over the emulator's own CA): the emulator is not Azure, so no SDK.
"""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.azure.connection import ConnectionFileError, read_connection_file, resolve_ca_path

TIMEOUT_SECONDS = 30


class Command(BaseCommand):
    help = "Start a failure scenario (e.g. site_down hrw-win-dmz) in the running local Azure emulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", help="agent_stopped, outbound_blocked, tls_intercepted, under_spec, site_down or flapping")
        parser.add_argument("target", help="a worker name (hrw-win-03) or a group name (hrw-win-dmz)")
        parser.add_argument("--minutes", type=float, default=20.0, help="how long it lasts, from now (default 20)")
        parser.add_argument("--connection-file", help="the emulator's connection file (default: var/emulator.json)")

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["connection_file"] or Path(settings.VAR_DIR) / "emulator.json")
        if not path.exists():
            raise CommandError(f"no emulator connection file at {path}: start the demo first (make demo)")
        try:
            conn = read_connection_file(path)
        except ConnectionFileError as exc:
            raise CommandError(str(exc)) from exc
        missing = [k for k in ("authority_host", "tenant_id", "client_id", "client_secret", "arm_endpoint") if not conn.get(k)]
        if missing:
            raise CommandError(f"connection file {path} lacks {', '.join(missing)}")
        ca = resolve_ca_path(str(conn.get("ca_bundle") or ""), path.parent)
        try:
            tls = ssl.create_default_context(cafile=ca or None)
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"cannot read the emulator's CA bundle {ca}: {exc}") from exc

        login = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": conn["client_id"],
                                        "client_secret": conn["client_secret"]}).encode()
        token = _call(urllib.request.Request(f"{conn['authority_host']}/{conn['tenant_id']}/oauth2/v2.0/token", data=login),
                      tls, "the emulator's token route")
        access = token.get("access_token") if isinstance(token, dict) else None
        if not isinstance(access, str):
            raise CommandError("the emulator's token route answered without an access token")
        body = json.dumps({"kind": opts["kind"], "target": opts["target"], "minutes": opts["minutes"]}).encode()
        request = urllib.request.Request(f"{conn['arm_endpoint']}/_emulator/scenarios", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {access}", "Content-Type": "application/json"})
        started = _call(request, tls, "the emulator's control API")
        if not isinstance(started, dict):
            raise CommandError("the emulator's control API answered with something other than a scenario")
        self.stdout.write(self.style.SUCCESS(describe(started)))


def describe(s: dict[str, Any]) -> str:
    """One line for a started scenario (the emulator's view of it)."""
    workers = [str(w) for w in s.get("workers") or []]
    shown = ", ".join(workers[:8]) + (f" and {len(workers) - 8} more" if len(workers) > 8 else "")
    return (f"Started {s.get('kind')} on {s.get('target')} for {float(s.get('minutes') or 0):g} minutes "
            f"(until {s.get('end')}, emulator time); "
            f"{len(workers)} worker{'s' if len(workers) != 1 else ''}: {shown or 'none'}")


def _call(request: urllib.request.Request, tls: ssl.SSLContext, what: str) -> Any:
    """The JSON answer, or a CommandError with the emulator's own message."""
    try:
        with urllib.request.urlopen(request, context=tls, timeout=TIMEOUT_SECONDS) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{what} refused it ({exc.code}): {_message(exc.read())}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach {what} at {request.full_url} ({reason}); is the demo running?") from exc
    except ValueError as exc:
        raise CommandError(f"{what} did not answer JSON") from exc


def _message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:300]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if data.get("error_description"):
            return str(data["error_description"])
    return json.dumps(data)[:300]
