"""Rate limits and the usage-limit reservations, on a fake clock."""

from __future__ import annotations

import pytest

from paitient_gateway.errors import LimitExceeded
from paitient_gateway.limits import RateLimiter, TokenBucket, UsageGuard, format_reset


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_a_minutes_allowance_over_a_minute() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)
    bucket.take(60)
    assert bucket.remaining() == 0
    assert bucket.wait_for(1) == pytest.approx(1.0)
    clock.now += 30
    assert bucket.remaining() == 30
    assert bucket.reset_seconds() == pytest.approx(30)


def test_a_bucket_in_debt_waits_it_off() -> None:
    clock = Clock()
    bucket = TokenBucket(100, clock)
    bucket.take(150)  # a request bigger than the allowance, admitted from a full bucket
    assert bucket.wait_for(10) == pytest.approx(60 / 100 * 60)


def test_the_limiter_refuses_with_retry_after_and_openai_headers() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for _ in range(3):
        limiter.admit("acme", rpm=3, tpm=1000, tokens=10)
    with pytest.raises(LimitExceeded) as caught:
        limiter.admit("acme", rpm=3, tpm=1000, tokens=10)
    headers = caught.value.headers
    assert headers["Retry-After"] == "20"
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert headers["x-ratelimit-remaining-tokens"] == "970"
    assert headers["x-ratelimit-reset-requests"] == "1m0s"
    assert set(headers) >= {"x-ratelimit-reset-tokens"}
    # Another tenant has its own allowance, untouched by acme's.
    other = limiter.admit("other", rpm=3, tpm=1000, tokens=10)
    assert other.headers["x-ratelimit-remaining-requests"] == "2"
    assert other.headers["x-ratelimit-remaining-tokens"] == "990"


def test_a_refused_request_takes_nothing() -> None:
    limiter = RateLimiter(clock=Clock())
    limiter.admit("acme", rpm=10, tpm=100, tokens=90)
    with pytest.raises(LimitExceeded):
        limiter.admit("acme", rpm=10, tpm=100, tokens=50)
    assert limiter.tenants["acme"].requests is not None
    assert limiter.tenants["acme"].requests.remaining() == 9


def test_settling_replaces_the_estimate_by_the_real_usage() -> None:
    limiter = RateLimiter(clock=Clock())
    admission = limiter.admit("acme", rpm=10, tpm=1000, tokens=500)
    limiter.settle(admission, 20)
    limiter.settle(admission, 20)  # twice is once
    tokens = limiter.tenants["acme"].tokens
    assert tokens is not None and tokens.remaining() == 980


def test_the_deployment_limit_applies_across_tenants() -> None:
    limiter = RateLimiter(deployment_rpm=2, clock=Clock())
    limiter.admit("a", rpm=100, tpm=10_000, tokens=1)
    limiter.admit("b", rpm=100, tpm=10_000, tokens=1)
    with pytest.raises(LimitExceeded) as caught:
        limiter.admit("c", rpm=100, tpm=10_000, tokens=1)
    assert caught.value.headers["x-ratelimit-limit-requests"] == "2"


def test_concurrent_reservations_cannot_overshoot_the_usage_limit() -> None:
    guard = UsageGuard()
    held = [guard.reserve("acme", "p", limit=1000, used=700, tokens=100, retry_after=5)]
    held += [guard.reserve("acme", "p", limit=1000, used=700, tokens=100, retry_after=5)]
    held += [guard.reserve("acme", "p", limit=1000, used=700, tokens=100, retry_after=5)]
    with pytest.raises(LimitExceeded) as caught:
        guard.reserve("acme", "p", limit=1000, used=700, tokens=1, retry_after=5)
    assert caught.value.reason == "usage_limit"
    assert caught.value.headers["Retry-After"] == "5"
    guard.release(held[0])
    guard.release(held[0])  # idempotent
    guard.reserve("acme", "p", limit=1000, used=700, tokens=100, retry_after=5)
    for r in held[1:]:
        guard.release(r)
    assert guard.reserved == {("acme", "p"): 100}


def test_no_limit_means_no_refusal() -> None:
    guard = UsageGuard()
    held = guard.reserve("acme", "p", limit=None, used=10**12, tokens=10**6, retry_after=1)
    assert (held.tokens, guard.reserved) == (10**6, {("acme", "p"): 10**6})
    with pytest.raises(LimitExceeded):  # the same request against a limit is refused
        guard.reserve("acme", "p", limit=10**12, used=10**12, tokens=10**6, retry_after=1)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (1.0, "1s"), (59.2, "1m0s"), (61, "1m1s")]
)
def test_reset_times_read_like_openais(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text
