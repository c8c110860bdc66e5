"""Every error the SDK raises, one class per row of the REST contract's error table.

    PaitientError
    ├── ConfigurationError          (also a ValueError: missing credentials, bad base URL)
    ├── WaitTimeoutError            (also a TimeoutError: wait_until_ready gave up)
    ├── AuthenticationError         401
    │   └── PermissionDeniedError   403
    ├── ValidationError             400, 422
    ├── ResourceError               (a deployment that failed)
    │   ├── NotFoundError           404
    │   └── ConflictError           409
    ├── RateLimitError              429
    └── ServiceError                >= 500
        └── APIConnectionError      no response at all
            └── APITimeoutError     no response in time

Every error carries ``status_code``, ``type``, ``request_id`` and ``body``; ``str(error)`` is
the server's message. The API key never appears in any of them.
"""

from __future__ import annotations

from typing import Any

from ._paitient_error import PaitientError
from ._types import DeploymentStatus

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "NotFoundError",
    "PaitientError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResourceError",
    "ServiceError",
    "ValidationError",
    "WaitTimeoutError",
]


class ConfigurationError(PaitientError, ValueError):
    """The client cannot be built: a credential or the base URL is missing or invalid."""


class WaitTimeoutError(PaitientError, TimeoutError):
    """``wait_until_ready`` ran out of time before the deployment became ready."""

    def __init__(
        self,
        message: str,
        *,
        deployment_id: str,
        last_status: DeploymentStatus | None = None,
    ) -> None:
        super().__init__(message, type="wait_timeout")
        self.deployment_id = deployment_id
        self.last_status = last_status


class AuthenticationError(PaitientError):
    """401: the API key or client ID was not accepted."""


class PermissionDeniedError(AuthenticationError):
    """403: the credentials are valid but may not perform this call."""


class ValidationError(PaitientError):
    """400 or 422: the request's parameters were rejected."""


class ResourceError(PaitientError):
    """A problem with the requested resource, such as a deployment that failed."""


class NotFoundError(ResourceError):
    """404: no such deployment (or other resource) for this client."""


class ConflictError(ResourceError):
    """409: the request conflicts with the resource's state, e.g. a name already taken."""


class RateLimitError(PaitientError):
    """429: too many requests or the usage cap was reached; see ``retry_after``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        type: str | None = None,  # noqa: A002
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, type=type, request_id=request_id, body=body
        )
        self.retry_after = retry_after


class ServiceError(PaitientError):
    """5xx: the service failed to answer the request."""


class APIConnectionError(ServiceError):
    """The request got no response: connection refused, reset or broken mid-stream."""


class APITimeoutError(APIConnectionError):
    """The request got no response within the timeout."""
