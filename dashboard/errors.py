"""Error answers that never need the database: JSON for the API, small static pages otherwise.

Used by dashboard.middleware (ApiJsonErrorsMiddleware, DatabaseUnavailableMiddleware) and as
``handler500`` in dashboard/urls.py, the backstop for an exception raised outside a view (in a
middleware, e.g. a session save while the database is down).
"""
from __future__ import annotations

import logging
import sys
import time
from http import HTTPStatus

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30
# Headers worth keeping when an HTML error becomes JSON.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "Vary")
_LOG_EVERY_SECONDS = 60.0
_last_logged = [float("-inf")]


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def as_json_error(response: HttpResponseBase) -> HttpResponse:
    """The same status and headers, with ``{"error": "<reason phrase>"}`` as the body."""
    converted = json_error(reason(response.status_code), status=response.status_code)
    for header in _KEPT_HEADERS:
        if header in response:
            converted[header] = response[header]
    return converted


def log_database_outage(exc: BaseException) -> None:
    """At most one log line a minute per process, not one per request."""
    now = time.monotonic()
    if now - _last_logged[0] < _LOG_EVERY_SECONDS:
        return
    _last_logged[0] = now
    log.error("database unavailable, answering 503: %s: %s", type(exc).__name__, str(exc).strip()[:300])


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503, JSON under /api/, otherwise a page rendered without the request (no user, no session:
    nothing that would read the database)."""
    response: HttpResponse
    if _is_api(request):
        response = json_error("database unavailable", status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a database outage is a 503 (see above); anything else a plain 500, JSON under
    /api/. Django has already logged the exception."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_ERRORS):
        log_database_outage(exc)
        return database_unavailable(request)
    if _is_api(request):
        return json_error("internal error", status=500)
    return HttpResponse(render_to_string("500.html"), status=500)
