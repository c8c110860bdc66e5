"""The one retry policy: which failures retry, how often, how long between, and what is sent."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import httpx
import pytest

from paitient_secure_model import (
    APIConnectionError,
    APITimeoutError,
    ConflictError,
    RateLimitError,
    ServiceError,
    ValidationError,
)
from paitient_secure_model._retry import backoff_delay, parse_retry_after, retry_delay

from .conftest import Sleeps, make_client
from .fakeserver import FakeServer, error


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


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(server: FakeServer, sleeps: Sleeps, status: int) -> None:
    handler, calls = script(server, error(status, "x", "a"), error(status, "x", "b"))
    assert make_client(handler, sleeps).get_subscription().tier == "standard"
    assert len(calls) == 3
    # Full jitter with random() pinned at 1.0: the top of the window, 0.5 s then 1 s.
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("status", "cls"), [(400, ValidationError), (409, ConflictError), (422, ValidationError)]
)
def test_client_errors_are_not_retried(
    server: FakeServer, sleeps: Sleeps, status: int, cls: type[Exception]
) -> None:
    handler, calls = script(server, error(status, "x", "no"))
    with pytest.raises(cls):
        make_client(handler, sleeps).get_subscription()
    assert len(calls) == 1
    assert sleeps == []


def test_gives_up_after_max_retries(server: FakeServer, sleeps: Sleeps) -> None:
    handler, calls = script(server, *[error(503, "service_error", "down")] * 10)
    with pytest.raises(ServiceError, match="down"):
        make_client(handler, sleeps, max_retries=4).get_subscription()
    assert len(calls) == 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_max_retries_zero_sends_once(server: FakeServer, sleeps: Sleeps) -> None:
    handler, calls = script(server, error(500, "service_error", "boom"))
    with pytest.raises(ServiceError):
        make_client(handler, sleeps, max_retries=0).get_subscription()
    assert len(calls) == 1


def test_backoff_is_full_jitter_capped_at_8s() -> None:
    assert [backoff_delay(n, lambda: 1.0) for n in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert backoff_delay(3, lambda: 0.25) == 1.0
    assert backoff_delay(0, lambda: 0.0) == 0.0


def test_retry_after_seconds_is_honoured(server: FakeServer, sleeps: Sleeps) -> None:
    limited = error(429, "rate_limit_error", "slow down")
    limited.headers["retry-after"] = "3"
    handler, _ = script(server, limited)
    make_client(handler, sleeps).get_subscription()
    assert sleeps == [3.0]


def test_retry_after_is_capped_at_60s(server: FakeServer, sleeps: Sleeps) -> None:
    limited = error(503, "service_error", "maintenance")
    limited.headers["retry-after"] = "3600"
    handler, _ = script(server, limited)
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
    limited = error(429, "rate_limit_error", "usage cap reached")
    limited.headers["retry-after"] = "2"
    handler, _ = script(server, limited, limited, limited)
    with pytest.raises(RateLimitError) as info:
        make_client(handler, sleeps).get_subscription()
    assert info.value.retry_after == 2.0
    assert sleeps == [2.0, 2.0]


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
    handler, calls = script(
        server, error(503, "service_error", "a"), error(502, "service_error", "b")
    )
    client = make_client(handler, sleeps)
    client.deploy_model("ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name="once")
    keys = {r.headers["idempotency-key"] for r in calls}
    assert len(calls) == 3
    assert len(keys) == 1
    assert list(server.deployments).count("once") == 1

    # A new call is a new operation: a new key.
    client.generate("deployment-123", "Hi")
    assert server.requests[-1].headers["idempotency-key"] not in keys


def test_generate_is_retried_before_any_byte(server: FakeServer, sleeps: Sleeps) -> None:
    handler, calls = script(server, error(503, "service_error", "warming up"))
    result = make_client(handler, sleeps).generate("deployment-123", "Hi")
    assert result.text
    assert len(calls) == 2
