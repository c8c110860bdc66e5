"""The one error shape every PaiTIENT component answers with, and the exceptions that carry it.

Body: ``{"error": {"type": "...", "message": "...", "request_id": "..."}}``; the front door's
OpenAI-compatible routes add OpenAI's ``param`` and ``code`` to it (``openai_error_body``), so
the openai SDKs fill in their errors' fields too. Hierarchy::

    ApiError                      (any answer that is not a success)
    ├── AuthenticationError       401 authentication_error
    ├── PermissionDeniedError     403 permission_error
    ├── RequestValidationError    400 / 422 validation_error
    ├── NotFoundError             404 not_found_error
    ├── ConflictError             409 conflict_error
    ├── RateLimitError            429 rate_limit_error
    └── ServiceError              500 / 502 / 503 / 504 service_error

Messages are public: they go to the caller verbatim, so they never carry prompt text, key
material, or which half of a key / client-ID pair was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, Literal

ErrorType = Literal[
    "authentication_error",
    "permission_error",
    "validation_error",
    "not_found_error",
    "conflict_error",
    "rate_limit_error",
    "service_error",
]

# One sentence for every authentication failure, so the answer never says which half was wrong.
AUTHENTICATION_MESSAGE: Final = "invalid API key or client ID"
SUSPENDED_MESSAGE: Final = "this client's subscription is suspended"
_INTERNAL_MESSAGE: Final = "internal error"
# Caps what a validation message may echo back; a long list of errors helps nobody.
_MAX_VALIDATION_ITEMS: Final = 5


class ApiError(Exception):
    """An error answered to the caller with a status, a type and a public message."""

    status: int = 500
    type: ClassVar[ErrorType] = "service_error"
    _allowed_statuses: ClassVar[frozenset[int]] = frozenset({500})
    default_message: ClassVar[str] = _INTERNAL_MESSAGE
    # OpenAI's machine-readable ``code`` for this kind of error, where OpenAI has one.
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.param = param  # the request field at fault, when one is
        self.code = code or self.default_code
        if status is not None:
            # A class fixes its family of statuses, so an error type never drifts from its code.
            if status not in self._allowed_statuses:
                raise ValueError(f"{type(self).__name__} cannot have status {status}")
            self.status = status
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        """Response headers this error calls for (none by default)."""
        return {}


class AuthenticationError(ApiError):
    """401: the key or the client ID (never said which) did not verify."""

    status = 401
    type = "authentication_error"
    _allowed_statuses = frozenset({401})
    default_message = AUTHENTICATION_MESSAGE
    default_code = "invalid_api_key"

    @property
    def headers(self) -> dict[str, str]:
        # RFC 6750 section 3: a 401 names the scheme the caller should use.
        return {"WWW-Authenticate": 'Bearer realm="paitient"'}


class PermissionDeniedError(ApiError):
    """403: the caller is known but may not do this (suspended, other tenant's resource...)."""

    status = 403
    type = "permission_error"
    _allowed_statuses = frozenset({403})
    default_message = "permission denied"


class RequestValidationError(ApiError):
    """400 (unreadable request), 405 (method not allowed), 413 (too large) or 422 (invalid)."""

    status = 400
    type = "validation_error"
    _allowed_statuses = frozenset({400, 405, 413, 422})
    default_message = "invalid request"

    @classmethod
    def from_pydantic(cls, errors: Sequence[Mapping[str, Any]]) -> RequestValidationError:
        """422 from ``pydantic.ValidationError.errors()``, naming fields and rules only.

        Pydantic's own text and each error's ``input`` echo what was sent, which may be a prompt
        (patient data), so only the location and the short message are kept.
        """
        parts = []
        for item in list(errors)[:_MAX_VALIDATION_ITEMS]:
            loc = ".".join(str(p) for p in item.get("loc", ())) or "body"
            parts.append(f"{loc}: {item.get('msg', 'invalid')}")
        if len(errors) > _MAX_VALIDATION_ITEMS:
            parts.append(f"and {len(errors) - _MAX_VALIDATION_ITEMS} more")
        return cls("; ".join(parts) or cls.default_message, status=422)


class NotFoundError(ApiError):
    """404: no such resource, or one the caller may not know exists."""

    status = 404
    type = "not_found_error"
    _allowed_statuses = frozenset({404})
    default_message = "not found"


class ConflictError(ApiError):
    """409: the resource exists already, or changed since it was read."""

    status = 409
    type = "conflict_error"
    _allowed_statuses = frozenset({409})
    default_message = "conflict"


class RateLimitError(ApiError):
    """429: a rate limit or the period's usage limit is reached."""

    status = 429
    type = "rate_limit_error"
    _allowed_statuses = frozenset({429})
    default_message = "rate limit exceeded"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return retry_after_header(self.retry_after)


class ServiceError(ApiError):
    """5xx: our fault or an upstream's (the model server); safe to retry. A 503 may say when
    (``retry_after``: a model server loading), and a front door passing it on keeps that."""

    status = 500
    type = "service_error"
    _allowed_statuses = frozenset({500, 502, 503, 504})
    default_message = _INTERNAL_MESSAGE

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, param=param, code=code)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return retry_after_header(self.retry_after)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """``Retry-After`` for a wait of ``seconds`` (none for None): whole seconds, rounded up, so
    a client that obeys it is not refused again."""
    return {} if seconds is None else {"Retry-After": str(max(1, math.ceil(seconds)))}


_BY_TYPE: Final[dict[str, type[ApiError]]] = {
    cls.type: cls
    for cls in (
        AuthenticationError,
        PermissionDeniedError,
        RequestValidationError,
        NotFoundError,
        ConflictError,
        RateLimitError,
        ServiceError,
    )
}


def error_body(err: BaseException, request_id: str) -> dict[str, dict[str, str]]:
    """The JSON body for ``err``. Anything that is not an ``ApiError`` is a bare 500: its text
    may hold internals or request data, so it is not echoed."""
    api = err if isinstance(err, ApiError) else ServiceError()
    return {"error": {"type": api.type, "message": api.message, "request_id": request_id}}


def openai_error_body(err: BaseException, request_id: str) -> dict[str, dict[str, str | None]]:
    """OpenAI's error shape: ``error_body`` plus ``param`` and ``code`` (null when none)."""
    api = err if isinstance(err, ApiError) else ServiceError()
    return {"error": {**error_body(api, request_id)["error"], "param": api.param, "code": api.code}}


def status_of(err: BaseException) -> int:
    """The HTTP status for ``err`` (500 for anything that is not an ``ApiError``)."""
    return err.status if isinstance(err, ApiError) else 500


def error_from_body(
    status: int, body: object, headers: Mapping[str, str] | None = None
) -> ApiError:
    """Rebuild the error an upstream PaiTIENT component answered, so the front door can pass a
    gateway's error on unchanged (a 429 or 503 keeps its ``Retry-After``); an unknown shape becomes a
    502."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        cls = _BY_TYPE.get(str(error.get("type")))
        message = error.get("message")
        if cls is RateLimitError and isinstance(message, str):
            return RateLimitError(message, retry_after=_retry_after(headers or {}))
        if cls is ServiceError and isinstance(message, str):
            # A 503 that says when to come back (a model server loading) keeps saying it.
            allowed = status in ServiceError._allowed_statuses
            return ServiceError(
                message, status=status if allowed else None, retry_after=_retry_after(headers or {})
            )
        if cls is not None and isinstance(message, str):
            if status in cls._allowed_statuses:
                return cls(message, status=status)
            return cls(message)
    return ServiceError("upstream answered an unexpected error", status=502)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        seconds = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
