"""Access control for every page and API endpoint.

``page_view``: a Django login, or a read-only token as ``?token=`` (display pages such as the wall).
A token lets GET/HEAD render; anything that changes state needs a real login. Templates keep the
token on links with the ``{% turl %}`` tag / ``with_token`` filter (dashboard/templatetags/hrw.py),
and static/js/app.js sends it as a Bearer header on fetches.

``api_view``: a Django session, or ``Authorization: Bearer <token>``; anyone else gets a JSON 401.

Tokens are stored as SHA-256 hashes (dashboard.models.ApiToken); a presented token is hashed and
looked up by that hash, so the comparison never runs over the secret itself.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils import timezone

from dashboard.models import ApiToken, TokenScope

TOKEN_PREFIX = "hrw_"
# last_used_at is a hint for the admin, not an audit log: write it at most once a minute per token.
LAST_USED_RESOLUTION = timedelta(seconds=60)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

View = Callable[..., HttpResponseBase]


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def issue_token(*, name: str, scope: str = TokenScope.READ) -> tuple[ApiToken, str]:
    """Create a token and return (row, raw token). The raw token is not stored anywhere."""
    if scope not in TokenScope.values:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(TokenScope.values)}")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(name=name, scope=scope, token_hash=hash_token(raw), prefix=raw[: len(TOKEN_PREFIX) + 6])
    return token, raw


def authenticate_token(raw: str | None) -> ApiToken | None:
    """The active token matching ``raw``, or None. Malformed input is simply not a match."""
    if not raw or len(raw) > 200 or not raw.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.filter(token_hash=hash_token(raw), revoked_at__isnull=True).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _token_refused(request: HttpRequest, reason: str) -> HttpResponse:
    body = render_to_string("registration/token_refused.html", {"reason": reason}, request=request)
    return HttpResponse(body, status=401)


def page_view(view: View) -> View:
    """Login required; or a valid read-only ``?token=`` for safe methods (the token stays on links)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        request.display_token = None  # type: ignore[attr-defined]
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        raw = request.GET.get("token")
        if raw is None:
            return redirect_to_login(request.get_full_path())
        token = authenticate_token(raw)
        if token is None:
            return _token_refused(request, "This token is invalid or has been revoked.")
        if request.method not in SAFE_METHODS:
            return _token_refused(request, "A read-only token cannot change anything: log in to do this.")
        request.display_token = raw  # type: ignore[attr-defined]
        request.api_token = token  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def api_view(view: View) -> View:
    """Session or ``Authorization: Bearer <token>``; otherwise a JSON 401 (403 for writes by a token)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        raw = bearer_token(request)
        token = authenticate_token(raw) if raw else None
        if token is None:
            message = "authentication required" if raw is None else "invalid or revoked token"
            response = JsonResponse({"error": message}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="hrw-monitor"'
            return response
        if request.method not in SAFE_METHODS:
            return JsonResponse({"error": "this token is read-only"}, status=403)
        request.api_token = token  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper
