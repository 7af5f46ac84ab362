"""What every ARM client of ours shares: the credential, the bounded retry policy and the read budget.

``AzureClient`` (Automation), ``MachineReader`` (Arc and VM state) and ``PingReader`` (the
HybridWorkerPing metric) all read Azure Resource Manager as the same principal in the same
subscription, so they spend one token bucket (``workers.azure.throttle``): a token is taken before
every request (retries included), and every response teaches the bucket (429 Retry-After, the
``x-ms-ratelimit-remaining-subscription-reads`` header). One of the SDK-importing modules.
"""
from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from workers.azure.connection import ConnectionSettings, credential_kwargs, retry_kwargs, transport_kwargs
from workers.azure.errors import AzureError, AzureTransientError, is_transient_status, retry_after_header, short_message
from workers.azure.throttle import ArmThrottle, throttle_for


class CappedRetryPolicy(RetryPolicy):
    """The SDK's retry policy, except that a Retry-After longer than the cap is not slept."""

    def __init__(self, *, max_retry_after: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self._max_retry_after:
            return False
        return super().is_retry(settings, response)


def make_credential(conn: ConnectionSettings, transport: Any = None) -> Any:
    """The service principal's secret when the connection has one, else DefaultAzureCredential."""
    common = credential_kwargs(conn, transport)
    if conn.client_secret:
        return ClientSecretCredential(conn.tenant_id, conn.client_id, conn.client_secret, **common)
    return DefaultAzureCredential(**common)


def shared_throttle(conn: ConnectionSettings) -> ArmThrottle | None:
    """The read budget of this subscription and principal (None when the budget is switched off)."""
    return throttle_for(conn.arm_endpoint, conn.subscription_id, conn.client_id or "default")


def arm_client_kwargs(conn: ConnectionSettings, throttle: ArmThrottle | None, transport: Any = None) -> dict[str, Any]:
    """Keyword arguments for a management SDK client: endpoint, bounded retries, timeouts, and the
    read budget as pipeline hooks (a token before each request, every response observed)."""
    kwargs: dict[str, Any] = {
        "base_url": conn.arm_endpoint,
        "retry_policy": CappedRetryPolicy(**retry_kwargs(conn)),
        **transport_kwargs(conn, transport),
    }
    if throttle is not None:
        kwargs["raw_request_hook"] = lambda _request: throttle.acquire()
        kwargs["raw_response_hook"] = lambda response: throttle.observe(
            response.http_response.status_code, response.http_response.headers
        )
    return kwargs


def map_sdk_error(exc: BaseException, what: str) -> AzureError:
    """A management SDK's error as ours: HTTP 429/5xx and connection failures are transient (with
    Retry-After), other statuses are not; ``what`` names the call for the PollRun and the page."""
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        headers = getattr(exc.response, "headers", None)
        message = f"{what}: HTTP {status}: {short_message(exc)}"
        if is_transient_status(status):
            return AzureTransientError(message, retry_after=retry_after_header(headers), status=status)
        return AzureError(message, status=status)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return AzureTransientError(f"{what}: {short_message(exc)}")
    return AzureError(f"{what}: {short_message(exc)}")
