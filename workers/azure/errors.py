"""Our two Azure error types, and the SDK-free facts the error mapping is decided from.

The adapter raises only ``AzureError`` (retrying will not help) and ``AzureTransientError`` (worth
retrying later). Which SDK exception becomes which is decided in ``workers.azure.client`` (the only
module that may name SDK classes); the helpers here read what needs no SDK: an HTTP status, a
``Retry-After`` header, the chain of causes, a TLS verification failure.
"""
from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

import requests

# Status codes worth retrying later (the SDK has already retried them retry_total times), with 5xx.
TRANSIENT_STATUS = frozenset({408, 429})


class AzureError(Exception):
    """Azure answered with something we cannot use (auth, not found, bad request, rows we cannot parse).

    ``status`` is the HTTP status when the service answered with one (400 tells a refused filter)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AzureTransientError(AzureError):
    """Worth retrying later: 429, 5xx, timeouts, connection errors, a truncated or garbled body.
    ``retry_after`` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class JobFilterRefused(AzureError):
    """The jobs list refused a ``$filter`` (HTTP 400) or visibly ignored it: use another strategy."""


class ThrottleDeferred(AzureTransientError):
    """No ARM read token within the allowed wait (``workers.azure.throttle``): the poll did not run and
    is retried later; it is not an outage. ``retry_after`` says when a token is expected."""


class _HttpResponse(Protocol):
    """The part of an ``azure.core`` HTTP response the status hook reads."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class _PipelineResponse(Protocol):
    """The part of an ``azure.core`` ``PipelineResponse`` the status hook reads."""

    @property
    def http_response(self) -> _HttpResponse: ...


class LastStatus:
    """A ``raw_response_hook`` remembering the last HTTP status of one call (all pages, all retries).

    The Logs client lets ``json.JSONDecodeError`` escape for a non-JSON error body; the status tells
    a transient HTML 502 apart from a malformed 200.
    """

    def __init__(self, observer: Callable[[int | None, Mapping[str, str] | None], None] | None = None) -> None:
        self.status: int | None = None
        self.retry_after: float | None = None
        self._observer = observer  # the ARM throttle learns from every response (429, remaining reads)

    def __call__(self, response: _PipelineResponse) -> None:
        http = response.http_response
        self.status = http.status_code
        self.retry_after = retry_after_header(http.headers)
        if self._observer is not None:
            self._observer(http.status_code, http.headers)


def retry_after_header(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``x-ms-retry-after-ms`` / ``Retry-After``, if any."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("Retry-After", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def is_transient_status(status: int | None) -> bool:
    """408, 429 and every 5xx: the service may answer differently later."""
    return status is not None and (status in TRANSIENT_STATUS or status >= 500)


def short_message(exc: BaseException) -> str:
    """The first line of ``exc`` (at most 300 characters), or its type name when it has no text."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def exception_causes(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions ``exc`` was raised from (``__cause__`` / ``__context__``), nearest first."""
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def malformed_body(exc: BaseException) -> bool:
    """Was a body cut short or garbled (invalid JSON or text)? A truncated answer is a transport
    accident, not a wrong request: the same call usually succeeds when repeated."""
    return any(isinstance(err, (json.JSONDecodeError, UnicodeDecodeError)) for err in (exc, *exception_causes(exc)))


def tls_untrusted(exc: BaseException) -> bool:
    """Did the TLS handshake fail (certificate not trusted)? Retrying cannot fix that: ca_bundle can."""
    for err in (exc, *exception_causes(exc)):
        for candidate in (err, getattr(err, "inner_exception", None)):
            if isinstance(candidate, ssl.SSLCertVerificationError):
                return True
            # requests keeps the ssl error only as text inside its own SSLError; a dropped
            # connection mid-handshake (EOF, reset) is an SSLError too, and stays transient.
            if isinstance(candidate, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(candidate):
                return True
    return False
