"""Response headers every page gets; JSON errors under /api/; a 503 when the database is down."""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse

from dashboard import errors

log = logging.getLogger(__name__)

# No inline script anywhere (data travels in json_script blocks, code in static files), nothing from
# another origin. Styles allow 'unsafe-inline' because plotly.js writes its chart styles into a
# <style> element at run time; the wall, which has no charts, sends the stricter WALL_CSP itself.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    """Adds DEFAULT_CSP to every response that does not set its own policy. Everything shown comes
    from Azure and is untrusted; escaping keeps it out of the markup, and this policy stops any
    script that still got in from running."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = DEFAULT_CSP
        return response


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class ApiJsonErrorsMiddleware:
    """Under /api/ every answer is JSON: a 4xx/5xx that some other layer rendered as HTML (an unknown
    URL, a method not allowed, a CSRF refusal) becomes ``{"error": "<reason>"}`` with the same status
    and headers such as ``Allow`` and ``WWW-Authenticate``; an exception in a view is logged and
    answered with a JSON 500 (a database outage with a JSON 503, see DatabaseUnavailableMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api_request(request) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return errors.as_json_error(response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_request(request) or isinstance(exception, errors.DATABASE_ERRORS):
            return None  # Django's own handling (404 for Http404, ...) or the database middleware
        if isinstance(exception, Http404 | PermissionDenied | BadRequest | SuspiciousOperation):
            return None  # Django answers 404/403/400 and __call__ turns that into JSON
        log.error("internal error answering %s %s", request.method, request.path, exc_info=exception)
        return errors.json_error("internal error", status=500)


class DatabaseUnavailableMiddleware:
    """The database unreachable (PostgreSQL down, a broken connection): a clear 503 instead of a
    traceback. Pages get a small HTML page that reads nothing from the database; the API gets
    ``{"error": "database unavailable"}``. Both say Retry-After. Logged at most once a minute per process."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, errors.DATABASE_ERRORS):
            return None
        errors.log_database_outage(exception)
        return errors.database_unavailable(request)
