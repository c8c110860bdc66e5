"""The one retry policy: which failures are retried, and how long to wait before each retry."""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable
from datetime import timezone
from typing import Callable

import httpx

log = logging.getLogger("paitient_secure_model")

# The JavaScript SDK must use the same numbers (STYLE.md: one policy).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

Sleep = Callable[[float], object]
AsyncSleep = Callable[[float], Awaitable[object]]


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - now()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)], ``attempt`` counting from 0."""
    return rand() * min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2.0**attempt)


def retry_delay(
    attempt: int, response: httpx.Response | None, rand: Callable[[], float] = random.random
) -> float:
    """How long to wait before retry number ``attempt + 1``: the server's Retry-After when it
    sent one (capped), else exponential backoff."""
    if response is not None:
        after = parse_retry_after(response.headers.get("retry-after"))
        if after is not None:
            return min(after, MAX_RETRY_AFTER)
    return backoff_delay(attempt, rand)


def is_retryable_status(status_code: int) -> bool:
    """408, 429 and 5xx are worth another try; 409 is not (the state will not change)."""
    return status_code in RETRY_STATUSES or status_code >= 500


def is_retryable_exception(exc: httpx.TransportError) -> bool:
    """Timeouts and network failures are transient; a bad URL or a proxy misconfiguration is not."""
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))


def delay_after_response(
    response: httpx.Response, attempt: int, max_retries: int, rand: Callable[[], float]
) -> float | None:
    """Seconds to wait before retrying this response, or None to give up on it."""
    if attempt >= max_retries or not is_retryable_status(response.status_code):
        return None
    delay = retry_delay(attempt, response, rand)
    log.info(
        "Retrying %s %s after HTTP %d in %.2fs (retry %d of %d)",
        response.request.method,
        response.request.url.path,
        response.status_code,
        delay,
        attempt + 1,
        max_retries,
    )
    return delay


def delay_after_exception(
    exc: httpx.TransportError, attempt: int, max_retries: int, rand: Callable[[], float]
) -> float | None:
    """Seconds to wait before retrying after a failure without a response, or None."""
    if attempt >= max_retries or not is_retryable_exception(exc):
        return None
    delay = retry_delay(attempt, None, rand)
    log.info(
        "Retrying after %s in %.2fs (retry %d of %d)",
        type(exc).__name__,
        delay,
        attempt + 1,
        max_retries,
    )
    return delay
