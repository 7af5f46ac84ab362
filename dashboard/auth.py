"""Access control for every page and API endpoint.

``page_view``: a Django login, or a read-only token as ``?token=`` (display pages).
``api_view``: a Django session, or ``Authorization: Bearer <token>``; anonymous callers get a JSON 401.
(Initial version: session login only; tokens are added with the ApiToken model.)
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse


def page_view(view):
    return login_required(view)


def api_view(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "authentication required"}, status=401)
        return view(request, *args, **kwargs)

    return wrapper
