"""One error shape for every component, and messages that leak nothing."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from paitient_common.errors import (
    AUTHENTICATION_MESSAGE,
    ApiError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ServiceError,
    error_body,
    error_from_body,
    openai_error_body,
    status_of,
)


@pytest.mark.parametrize(
    ("err", "status", "type_"),
    [
        (AuthenticationError(), 401, "authentication_error"),
        (PermissionDeniedError(), 403, "permission_error"),
        (RequestValidationError(), 400, "validation_error"),
        (RequestValidationError("bad field", status=422), 422, "validation_error"),
        (NotFoundError(), 404, "not_found_error"),
        (RateLimitError(), 429, "rate_limit_error"),
        (ServiceError(), 500, "service_error"),
        (ServiceError("model server unavailable", status=503), 503, "service_error"),
    ],
)
def test_each_error_has_its_status_type_and_the_one_body_shape(
    err: ApiError, status: int, type_: str
) -> None:
    assert (err.status, err.type, status_of(err)) == (status, type_, status)
    body = error_body(err, "req-123")
    assert body == {"error": {"type": type_, "message": err.message, "request_id": "req-123"}}
    assert err.message
    assert json.loads(json.dumps(body)) == body  # JSON as it is, nothing to convert


def test_a_class_keeps_to_its_own_statuses() -> None:
    with pytest.raises(ValueError, match="cannot have status 500"):
        AuthenticationError(status=500)
    with pytest.raises(ValueError):
        ServiceError(status=404)


def test_the_authentication_message_names_neither_half() -> None:
    message = AuthenticationError().message
    assert message == AUTHENTICATION_MESSAGE
    assert "key or client" in message  # both, always together
    assert AuthenticationError().headers == {"WWW-Authenticate": 'Bearer realm="paitient"'}


def test_unexpected_exceptions_are_a_bare_500_without_their_text() -> None:
    err = RuntimeError("patient John Doe, MRN 12345: stack details")
    body = error_body(err, "req-9")
    assert body == {
        "error": {"type": "service_error", "message": "internal error", "request_id": "req-9"}
    }
    assert status_of(err) == 500


def test_rate_limit_errors_say_when_to_come_back() -> None:
    assert RateLimitError(retry_after=0.2).headers == {"Retry-After": "1"}
    assert RateLimitError(retry_after=2.01).headers == {"Retry-After": "3"}
    assert RateLimitError().headers == {}


class _Prompt(BaseModel):
    prompt: str
    max_tokens: int


def test_validation_messages_never_echo_what_was_sent() -> None:
    secret_prompt = "Patient Jane Roe, DOB 1970-01-01, HIV positive"
    with pytest.raises(ValidationError) as info:
        _Prompt.model_validate({"prompt": secret_prompt, "max_tokens": secret_prompt})
    err = RequestValidationError.from_pydantic(info.value.errors())
    assert err.status == 422
    assert "max_tokens" in err.message
    assert "Jane" not in err.message and "1970" not in err.message


def test_long_validation_error_lists_are_cut_short() -> None:
    errors = [{"loc": ("f", i), "msg": "bad"} for i in range(20)]
    message = RequestValidationError.from_pydantic(errors).message
    assert message.count("bad") == 5 and message.endswith("and 15 more")
    assert RequestValidationError.from_pydantic([]).message == "invalid request"


@pytest.mark.parametrize(
    "err",
    [
        AuthenticationError(),
        PermissionDeniedError("suspended"),
        RequestValidationError("x: bad", status=422),
        NotFoundError("no deployment 'a'"),
        RateLimitError("monthly token limit reached"),
        ServiceError("model server unavailable", status=503),
    ],
)
def test_an_upstream_error_body_is_rebuilt_unchanged(err: ApiError) -> None:
    again = error_from_body(err.status, error_body(err, "r"))
    assert (type(again), again.status, again.message) == (type(err), err.status, err.message)


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, None), (502, "oops"), (400, {"error": "x"}), (418, {"error": {"type": "teapot"}})],
)
def test_an_unknown_upstream_error_is_a_bad_gateway(status: int, body: object) -> None:
    err = error_from_body(status, body)
    assert isinstance(err, ServiceError) and err.status == 502


def test_an_upstream_type_with_an_odd_status_keeps_its_type() -> None:
    err = error_from_body(500, {"error": {"type": "not_found_error", "message": "gone"}})
    assert isinstance(err, NotFoundError) and err.status == 404


def test_a_rebuilt_429_keeps_the_gateways_retry_after() -> None:
    body = error_body(RateLimitError("usage limit for the period reached"), "r")
    again = error_from_body(429, body, {"Retry-After": "42"})
    assert isinstance(again, RateLimitError) and again.headers == {"Retry-After": "42"}
    for odd in ({}, {"Retry-After": "soon"}, {"Retry-After": "-3"}, {"Retry-After": "nan"}):
        assert error_from_body(429, body, odd).headers == {}


def test_a_rebuilt_503_keeps_the_gateways_retry_after() -> None:
    """A model server that is loading: the gateway's 503 says when to come back, and the front
    door passing it on says it too (sdk/testdata/errors.json's model_loading)."""
    body = error_body(ServiceError("loading", status=503), "r")
    again = error_from_body(503, body, {"Retry-After": "5"})
    assert isinstance(again, ServiceError) and again.status == 503
    assert again.headers == {"Retry-After": "5"}
    assert error_from_body(502, error_body(ServiceError("x", status=502), "r")).headers == {}


@pytest.mark.parametrize(
    ("err", "param", "code"),
    [
        (AuthenticationError(), None, "invalid_api_key"),
        (RateLimitError(retry_after=3), None, "rate_limit_exceeded"),
        (
            NotFoundError("no such model", param="model", code="model_not_found"),
            "model",
            "model_not_found",
        ),
        (RequestValidationError("'model' must be a string", param="model"), "model", None),
        (ServiceError(), None, None),
        (RuntimeError("internal detail"), None, None),
    ],
)
def test_the_openai_shape_is_ours_plus_param_and_code(
    err: BaseException, param: str | None, code: str | None
) -> None:
    body = openai_error_body(err, "req-1")
    assert body == {"error": {**error_body(err, "req-1")["error"], "param": param, "code": code}}
    assert "internal detail" not in json.dumps(body)
