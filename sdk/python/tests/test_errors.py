"""Every status of the contract's error table maps to its class, with its fields."""

from __future__ import annotations

import httpx
import pytest

import paitient_secure_model as psm
from paitient_secure_model import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PaitientError,
    PermissionDeniedError,
    RateLimitError,
    ResourceError,
    ServiceError,
    ValidationError,
    WaitTimeoutError,
)

from .conftest import make_client
from .fakeserver import API_KEY, error

TABLE = [
    (400, "validation_error", ValidationError),
    (422, "validation_error", ValidationError),
    (401, "authentication_error", AuthenticationError),
    (403, "permission_error", PermissionDeniedError),
    (404, "not_found_error", NotFoundError),
    (409, "conflict_error", ConflictError),
    (429, "rate_limit_error", RateLimitError),
    (500, "service_error", ServiceError),
    (502, "service_error", ServiceError),
    (503, "service_error", ServiceError),
    (504, "service_error", ServiceError),
]


def test_hierarchy_matches_the_contract() -> None:
    assert issubclass(PermissionDeniedError, AuthenticationError)
    assert issubclass(NotFoundError, ResourceError)
    assert issubclass(ConflictError, ResourceError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APIConnectionError, ServiceError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(WaitTimeoutError, TimeoutError)
    for name in psm.__all__:
        obj = getattr(psm, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, PaitientError), name
            assert obj.__doc__ and "\n" not in obj.__doc__.strip(), f"{name}: one-line docstring"


@pytest.mark.parametrize(("status", "type_", "cls"), TABLE)
def test_status_maps_to_class(status: int, type_: str, cls: type[PaitientError]) -> None:
    client = make_client(
        lambda r: error(status, type_, "the server's message", "req-42"), max_retries=0
    )
    with pytest.raises(cls) as info:
        client.get_subscription()
    exc = info.value
    assert type(exc) is cls
    assert str(exc) == "the server's message"
    assert exc.status_code == status
    assert exc.type == type_
    assert exc.request_id == "req-42"
    assert exc.body == {
        "error": {"type": type_, "message": "the server's message", "request_id": "req-42"}
    }


def test_rate_limit_error_carries_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = error(429, "rate_limit_error", "slow down")
        response.headers["retry-after"] = "7"
        return response

    with pytest.raises(RateLimitError) as info:
        make_client(handler, max_retries=0).get_subscription()
    assert info.value.retry_after == 7.0


def test_non_json_error_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            502, text="Bad Gateway from nginx", headers={"x-request-id": "edge-1"}
        )

    with pytest.raises(ServiceError) as info:
        make_client(handler, max_retries=0).get_subscription()
    assert str(info.value) == "HTTP 502 Bad Gateway: Bad Gateway from nginx"
    assert info.value.request_id == "edge-1"  # from the header when the body has none
    assert info.value.type is None


def test_unlisted_status_falls_back_to_the_error_type_then_the_base_class() -> None:
    client = make_client(lambda r: error(413, "validation_error", "prompt too large"))
    with pytest.raises(ValidationError):
        client.generate("deployment-123", "x")
    client = make_client(lambda r: httpx.Response(418), max_retries=0)
    with pytest.raises(PaitientError) as info:
        client.get_subscription()
    assert type(info.value) is PaitientError
    assert info.value.status_code == 418


def test_connection_and_timeout_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(APIConnectionError) as conn:
        make_client(refuse, max_retries=0).get_subscription()
    assert type(conn.value) is APIConnectionError
    assert conn.value.status_code is None
    assert isinstance(conn.value.__cause__, httpx.ConnectError)
    with pytest.raises(APITimeoutError):
        make_client(hang, max_retries=0).get_subscription()


def test_api_key_never_appears_in_errors() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return error(401, "authentication_error", f"unknown key {API_KEY}")

    with pytest.raises(AuthenticationError) as info:
        make_client(echo).get_subscription()
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value)
    assert str(info.value) == "unknown key [redacted]"
    assert API_KEY not in repr(info.value.body)
