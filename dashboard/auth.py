"""Access control for every page and API endpoint.

``page_view``: a Django login. Reading needs nothing more; changing anything also needs the view's
permission (``requires``, see dashboard/roles.py): a viewer gets a 403 page, never a 500.

``display_view`` (the NOC wall only): a login, or a read-only display token. A token arrives once as
``?token=``; it is exchanged for a signed, HttpOnly cookie and the browser is redirected to the same
URL without it, so the token is in at most one access-log line (that redirect). The cookie holds the
token's hash, signed with SECRET_KEY, and is checked against the database on every request, so
revoking the token ends it. A display token opens the wall and the read API, never any other page
(alert recipients, email bodies): those answer 403.

``api_view``: a Django session, ``Authorization: Bearer <token>``, or the display cookie; anyone
else gets a JSON 401, and a token (either way) gets a JSON 403 on anything but GET/HEAD/OPTIONS.

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
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils import timezone

from dashboard.models import ApiToken, TokenScope

TOKEN_PREFIX = "hrw_"
# last_used_at is a hint for the admin, not an audit log: write it at most once a minute per token.
LAST_USED_RESOLUTION = timedelta(seconds=60)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The display cookie: the token's hash, signed. A wall re-opened from its bookmarked ?token= URL
# simply gets a fresh one; revocation is checked on every request whatever the cookie's age.
DISPLAY_COOKIE = "hrw_display"
DISPLAY_COOKIE_SALT = "dashboard.auth.display-token"
DISPLAY_COOKIE_MAX_AGE = timedelta(days=90)

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


def _active_token(token_hash: str) -> ApiToken | None:
    token = ApiToken.objects.filter(token_hash=token_hash, revoked_at__isnull=True).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def authenticate_token(raw: str | None) -> ApiToken | None:
    """The active token matching ``raw``, or None. Malformed input is simply not a match."""
    if not raw or len(raw) > 200 or not raw.startswith(TOKEN_PREFIX):
        return None
    return _active_token(hash_token(raw))


def bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def display_cookie_token(request: HttpRequest) -> ApiToken | None:
    """The active token named by a valid display cookie, or None (absent, tampered, expired, revoked)."""
    if DISPLAY_COOKIE not in request.COOKIES:
        return None
    try:
        value = request.get_signed_cookie(DISPLAY_COOKIE, salt=DISPLAY_COOKIE_SALT, max_age=DISPLAY_COOKIE_MAX_AGE)
    except (signing.BadSignature, ValueError):
        return None
    if not value or len(value) != 64:
        return None
    return _active_token(value)


def set_display_cookie(request: HttpRequest, response: HttpResponseBase, token: ApiToken) -> None:
    response.set_signed_cookie(
        DISPLAY_COOKIE, token.token_hash, salt=DISPLAY_COOKIE_SALT,
        max_age=int(DISPLAY_COOKIE_MAX_AGE.total_seconds()), httponly=True, samesite="Lax",
        secure=bool(settings.SESSION_COOKIE_SECURE or settings.SECURE_SSL_REDIRECT or request.is_secure()),
    )


def client_ip(request: HttpRequest) -> str | None:
    """The client address for login throttling (AXES_CLIENT_IP_CALLABLE): REMOTE_ADDR, or the header a
    trusted proxy sets (LOGIN_CLIENT_IP_HEADER; of a list, the right-most entry, the one it added)."""
    value = str(request.META.get(settings.LOGIN_CLIENT_IP_META) or request.META.get("REMOTE_ADDR") or "")
    return value.split(",")[-1].strip()[:64] or None


def _refused(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    body = render_to_string("registration/token_refused.html", {"reason": reason, "status": status}, request=request)
    return HttpResponse(body, status=status)


def _token_refused(request: HttpRequest, reason: str) -> HttpResponse:
    return _refused(request, reason, 401)


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    body = render_to_string("registration/forbidden.html", {"reason": reason}, request=request)
    return HttpResponse(body, status=403)


def _without_token(request: HttpRequest) -> str:
    query = [(k, v) for k, values in request.GET.lists() if k != "token" for v in values]
    return request.path + (f"?{urlencode(query)}" if query else "")


ONLY_THE_WALL = ("A display token opens only the wall and the read API, not this page: log in to see it.")


def page_view(view: View) -> View:
    """A login is required; a display token (``?token=`` or its cookie) is refused with a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if "token" in request.GET or display_cookie_token(request) is not None:
            return forbidden(request, ONLY_THE_WALL)
        return redirect_to_login(request.get_full_path())

    return wrapper


def display_view(view: View) -> View:
    """A login, or a display token: ``?token=`` is swapped for the cookie and a redirect to the clean URL."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if "token" in request.GET:
            token = authenticate_token(request.GET.get("token"))
            if token is None:
                return _token_refused(request, "This token is invalid or has been revoked.")
            if request.method not in SAFE_METHODS:
                return _token_refused(request, "A read-only token cannot change anything: log in to do this.")
            response = HttpResponseRedirect(_without_token(request))
            response["Cache-Control"] = "no-store"
            response["Referrer-Policy"] = "no-referrer"
            set_display_cookie(request, response, token)
            return response
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        token = display_cookie_token(request)
        if token is None:
            return redirect_to_login(request.get_full_path())
        if request.method not in SAFE_METHODS:
            return _token_refused(request, "A read-only token cannot change anything: log in to do this.")
        request.api_token = token  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def requires(*perms: str) -> Callable[[View], View]:
    """Inside ``page_view``: a request that changes state (not GET/HEAD/OPTIONS) needs ``perms``
    (see dashboard/roles.py); without them a 403 page. Reading needs only the login."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in SAFE_METHODS and not request.user.has_perms(perms):
                return forbidden(request, "Your role cannot change this: ask an administrator for the operator role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def api_view(view: View) -> View:
    """Session, ``Authorization: Bearer <token>`` or the display cookie; else a JSON 401 (403 for writes by a token)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        raw = bearer_token(request)
        token = authenticate_token(raw) if raw else display_cookie_token(request)
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
