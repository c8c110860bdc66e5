"""Which error each failure raises: a status or error type, no response, a body that is not JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable

import httpx

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PaitientError,
    PermissionDeniedError,
    RateLimitError,
    ServiceError,
    ValidationError,
)
from ._requests import Json
from ._retry import parse_retry_after

Redact = Callable[[str], str]

_STATUS_ERRORS: dict[int, type[PaitientError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}

_TYPE_ERRORS: dict[str, type[PaitientError]] = {
    "validation_error": ValidationError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "conflict_error": ConflictError,
    "rate_limit_error": RateLimitError,
    "service_error": ServiceError,
}


def _error_payload(body: Json) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return error
    return {}


def _decode_body(text: str) -> Json:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text or None


def connection_error(exc: httpx.TransportError, redact: Redact) -> APIConnectionError:
    """The error for a request that got no response (or lost it mid-stream)."""
    detail = redact(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Request timed out: {detail}", type="timeout_error")
    return APIConnectionError(f"Connection error: {detail}", type="connection_error")


def status_error(response: httpx.Response, redact: Redact) -> PaitientError:
    """The error for a non-2xx response whose body has been read."""
    # The body is redacted too: a server echoing the key must not put it into a traceback.
    body = _decode_body(redact(response.text))
    payload = _error_payload(body)
    message = payload.get("message")
    if not isinstance(message, str) or not message:
        message = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        if isinstance(body, str) and body.strip():
            message += f": {body.strip()[:200]}"
    error_type = payload.get("type") if isinstance(payload.get("type"), str) else None
    request_id = payload.get("request_id")
    if not isinstance(request_id, str):
        request_id = response.headers.get("x-request-id")
    status = response.status_code
    cls = _STATUS_ERRORS.get(status) or (
        ServiceError if status >= 500 else _TYPE_ERRORS.get(error_type or "", PaitientError)
    )
    kwargs: dict[str, Any] = {
        "status_code": status,
        "type": error_type,
        "request_id": request_id,
        "body": body,
    }
    if issubclass(cls, RateLimitError):
        kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
    return cls(message, **kwargs)


def event_error(
    payload: Mapping[str, Any], request_id: str | None, redact: Redact
) -> PaitientError:
    """The error for a ``data: {"error": {...}}`` event after the stream started."""
    error_type = payload.get("type") if isinstance(payload.get("type"), str) else None
    message = payload.get("message")
    if not isinstance(message, str) or not message:
        message = "The generation failed after the stream started"
    event_request_id = payload.get("request_id")
    # Nothing can be retried once bytes arrived, so an untyped failure is the service's.
    cls = _TYPE_ERRORS.get(error_type or "", ServiceError)
    return cls(
        redact(message),
        type=error_type,
        request_id=event_request_id if isinstance(event_request_id, str) else request_id,
        body={"error": dict(payload)},
    )


def stream_ended_early(request_id: str | None) -> APIConnectionError:
    """The error for a stream whose body ended before its final chunk or ``[DONE]``."""
    return APIConnectionError(
        "The stream ended before the generation finished",
        type="connection_error",
        request_id=request_id,
    )


def json_body(response: httpx.Response) -> Json:
    """A 2xx response's JSON, or PaitientError when it is not JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PaitientError(
            f"Unexpected response from the API: HTTP {response.status_code} is not JSON",
            status_code=response.status_code,
            type="invalid_response",
            request_id=response.headers.get("x-request-id"),
            body=response.text,
        ) from None
