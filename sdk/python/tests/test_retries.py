"""The one retry policy: which failures retry, how often, how long between, and what is sent.

The failures are the front door's own answers, recorded from its code in sdk/testdata/errors.json
(``service_error(name)``): its 503 for a deployment not ready, the gateway's 503 for a model
loading (with Retry-After), 429s of the limiter and the usage guard, 502/504 of a failing or slow
model, 500 for a failure of its own. Only 408, which the front door never sends (a proxy may),
is written here."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import httpx
import pytest

from paitient_secure_model import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
    RateLimitError,
    ServiceError,
    ValidationError,
)
from paitient_secure_model._retry import backoff_delay, parse_retry_after, retry_delay

from .conftest import Sleeps, make_client
from .fakeserver import FakeServer, error, service_error


def script(server: FakeServer, *failures: httpx.Response | Exception):
    """A handler answering with each failure in turn, then with the fake server."""
    pending: Iterator[httpx.Response | Exception] = iter(failures)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        nxt = next(pending, None)
        if nxt is None:
            return server.handle(request)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt

    return handler, calls


# Full jitter with random() pinned at 1.0: the top of the window, 0.5 s then 1 s; or the
# answer's Retry-After (capped at 60 s).
RETRYABLE = [
    ("deployment_not_ready", 503, [0.5, 1.0]),
    ("model_loading", 503, [5.0, 5.0]),
    ("rate_limited", 429, [60.0, 60.0]),
    ("usage_limit_reached", 429, [60.0, 60.0]),
    ("internal_error", 500, [0.5, 1.0]),
    ("model_failed", 502, [0.5, 1.0]),
    ("gateway_unreachable", 502, [0.5, 1.0]),
    ("model_timeout", 504, [0.5, 1.0]),
]


@pytest.mark.parametrize(("name", "status", "waits"), RETRYABLE)
def test_the_front_doors_retryable_answers_are_retried(
    server: FakeServer, sleeps: Sleeps, name: str, status: int, waits: list[float]
) -> None:
    answer = service_error(name)
    assert answer.status_code == status  # what the front door answered when it was recorded
    handler, calls = script(server, answer, service_error(name))
    assert make_client(handler, sleeps).get_subscription().tier == "standard"
    assert len(calls) == 3
    assert sleeps == waits


def test_a_408_from_a_proxy_is_retried(server: FakeServer, sleeps: Sleeps) -> None:
    handler, calls = script(server, error(408, "timeout", "request timeout"))
    assert make_client(handler, sleeps).get_subscription().tier == "standard"
    assert (len(calls), sleeps) == (2, [0.5])


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("chat_messages_empty", ValidationError),
        ("deployment_exists", ConflictError),
        ("prompt_empty", ValidationError),
        ("authentication", AuthenticationError),
        ("suspended", PermissionDeniedError),
    ],
)
def test_client_errors_are_not_retried(
    server: FakeServer, sleeps: Sleeps, name: str, cls: type[Exception]
) -> None:
    handler, calls = script(server, service_error(name))
    with pytest.raises(cls):
        make_client(handler, sleeps).get_subscription()
    assert len(calls) == 1
    assert sleeps == []


def test_gives_up_after_max_retries(server: FakeServer, sleeps: Sleeps) -> None:
    handler, calls = script(server, *[service_error("deployment_not_ready")] * 10)
    with pytest.raises(ServiceError, match="deployment warming is not ready"):
        make_client(handler, sleeps, max_retries=4).get_subscription()
    assert len(calls) == 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_max_retries_zero_sends_once(server: FakeServer, sleeps: Sleeps) -> None:
    handler, calls = script(server, service_error("internal_error"))
    with pytest.raises(ServiceError, match="internal error"):
        make_client(handler, sleeps, max_retries=0).get_subscription()
    assert len(calls) == 1


def test_backoff_is_full_jitter_capped_at_8s() -> None:
    assert [backoff_delay(n, lambda: 1.0) for n in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert backoff_delay(3, lambda: 0.25) == 1.0
    assert backoff_delay(0, lambda: 0.0) == 0.0


def test_retry_after_seconds_is_honoured(server: FakeServer, sleeps: Sleeps) -> None:
    loading = service_error("model_loading")  # the gateway's 503: come back in 5 s
    assert loading.headers["retry-after"] == "5"
    handler, _ = script(server, loading)
    make_client(handler, sleeps).get_subscription()
    assert sleeps == [5.0]


def test_retry_after_is_capped_at_60s(server: FakeServer, sleeps: Sleeps) -> None:
    spent = service_error("usage_limit_reached")  # until the period ends: an hour here
    assert spent.headers["retry-after"] == "3600"
    handler, _ = script(server, spent)
    make_client(handler, sleeps).get_subscription()
    assert sleeps == [60.0]


def test_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=lambda: now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after("1.5") == 1.5
    # Through retry_delay, dates whose answer does not depend on the clock: one already past
    # waits nothing, one a day away is capped at 60 s.
    for offset, expected in ((-60, 0.0), (86400, 60.0)):
        date = email.utils.formatdate(time.time() + offset, usegmt=True)
        assert retry_delay(0, httpx.Response(503, headers={"retry-after": date})) == expected


def test_rate_limit_after_retries_surfaces_retry_after(server: FakeServer, sleeps: Sleeps) -> None:
    handler, _ = script(server, *[service_error("rate_limited")] * 3)
    with pytest.raises(RateLimitError, match="requests per minute") as info:
        make_client(handler, sleeps).get_subscription()
    assert info.value.retry_after == 60.0
    assert sleeps == [60.0, 60.0]


def test_connection_errors_are_retried(server: FakeServer, sleeps: Sleeps) -> None:
    request = httpx.Request("GET", "http://x")
    handler, calls = script(
        server,
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
    )
    assert make_client(handler, sleeps).get_subscription().tier == "standard"
    assert len(calls) == 3
    assert sleeps == [0.5, 1.0]


def test_connection_errors_exhausted(server: FakeServer, sleeps: Sleeps) -> None:
    request = httpx.Request("GET", "http://x")
    handler, calls = script(server, *[httpx.ConnectTimeout("slow", request=request)] * 3)
    with pytest.raises(APITimeoutError):
        make_client(handler, sleeps).get_subscription()
    assert len(calls) == 3


def test_non_transient_transport_errors_are_not_retried(server: FakeServer, sleeps: Sleeps) -> None:
    request = httpx.Request("GET", "http://x")
    handler, calls = script(server, httpx.ProxyError("bad proxy", request=request))
    with pytest.raises(APIConnectionError):
        make_client(handler, sleeps).get_subscription()
    assert len(calls) == 1


def test_post_retries_reuse_one_idempotency_key(server: FakeServer, sleeps: Sleeps) -> None:
    """Each attempt reaches the server, which creates on the first and answers the retries
    from its record; the answers are lost on the way back (a dropped connection, then the
    front door's 502). A retry with a new key would create again, or be refused 409."""
    lost = iter([httpx.RemoteProtocolError("server disconnected"), service_error("model_failed")])
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = server.handle(request)
        failure = next(lost, None)
        if isinstance(failure, Exception):
            raise failure
        return failure if failure is not None else answer

    client = make_client(handler, sleeps)
    deployment = client.deploy_model("ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name="once")
    assert deployment.id == "once" and len(calls) == 3
    keys = [r.headers["idempotency-key"] for r in calls]
    assert len(set(keys)) == 1
    assert server.creates == [(keys[0], "once")]  # one create for the one key

    # A new call is a new operation: a new key.
    client.generate("deployment-123", "Hi")
    assert server.requests[-1].headers["idempotency-key"] not in keys


def test_generate_is_retried_before_any_byte(server: FakeServer, sleeps: Sleeps) -> None:
    handler, calls = script(server, service_error("model_loading"))
    result = make_client(handler, sleeps).generate("deployment-123", "Hi")
    assert result.text
    assert len(calls) == 2
