"""Response headers every page gets."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
