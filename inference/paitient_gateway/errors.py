"""The gateway's own cases of the shared errors (``paitient_common.errors``).

Upstream failures and timeouts are ``service_error`` with a fixed message: never vLLM's text,
never a stack trace.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Final

from paitient_common.errors import (
    ApiError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    ServiceError,
)

REQUEST_ID_HEADER: Final = "x-request-id"
_MAX_INCOMING_ID: Final = 128
_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class PayloadTooLargeError(RequestValidationError):
    """413: the body is over the gateway's size limit."""

    status = 413
    _allowed_statuses = frozenset({413})
    default_message = "request body too large"


class LimitExceeded(RateLimitError):
    """429 with the ``x-ratelimit-*`` headers of the scope that refused, and why."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        reason: str,
        limit_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reason = reason
        self.limit_headers = dict(limit_headers or {})

    @property
    def headers(self) -> dict[str, str]:
        return {**self.limit_headers, **super().headers}


class UpstreamNotAccepting(ServiceError):
    """503 with Retry-After: vLLM's port is closed, as it is while vLLM loads or restarts."""

    status = 503
    _allowed_statuses = frozenset({503})
    default_message = "the model server is not accepting requests yet (loading or restarting)"
    retry_after_seconds = 5

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


def upstream_failed() -> ServiceError:
    return ServiceError("the model server failed to answer", status=502)


def upstream_timeout() -> ServiceError:
    return ServiceError("the model server did not answer in time", status=504)


def unavailable(message: str) -> ServiceError:
    return ServiceError(message, status=503)


def error_for_status(status: int) -> ApiError:
    """Our error for one of aiohttp's own HTTP exceptions."""
    if status in (404, 405):
        return NotFoundError("no such route")
    if status == 413:
        return PayloadTooLargeError()
    if 400 <= status < 500:
        return RequestValidationError()
    return ServiceError()


def request_id_from(incoming: str | None) -> str:
    """Keep a caller's (or the front door's) id when short and plain, else mint a new one."""
    if incoming and len(incoming) <= _MAX_INCOMING_ID and all(c in _ID_CHARS for c in incoming):
        return incoming
    return f"req_{uuid.uuid4().hex}"
