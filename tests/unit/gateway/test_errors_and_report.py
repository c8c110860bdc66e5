"""The gateway's errors and usage report (pure parts)."""

from __future__ import annotations

from paitient_common.errors import ConflictError, error_body
from paitient_common.resources.usagereport import parse_usage_report
from paitient_gateway.errors import (
    LimitExceeded,
    PayloadTooLargeError,
    error_for_status,
    request_id_from,
    upstream_failed,
    upstream_timeout,
)
from paitient_gateway.ledger import UsageCounters, UsageRecord
from paitient_gateway.report import build_usage_report

PEPPER = b"p" * 32


def test_every_error_has_the_one_shape() -> None:
    for err, status, kind in [
        (ConflictError(), 409, "conflict_error"),
        (PayloadTooLargeError(), 413, "validation_error"),
        (upstream_failed(), 502, "service_error"),
        (upstream_timeout(), 504, "service_error"),
        (error_for_status(405), 404, "not_found_error"),
    ]:
        assert err.status == status
        assert error_body(err, "req_1") == {
            "error": {"type": kind, "message": err.message, "request_id": "req_1"}
        }


def test_upstream_errors_say_nothing_of_the_upstream() -> None:
    assert upstream_failed().message == "the model server failed to answer"


def test_a_limit_error_carries_its_headers_and_retry_after() -> None:
    err = LimitExceeded(
        "x", retry_after=1.2, reason="rate_limit", limit_headers={"x-ratelimit-limit-tokens": "9"}
    )
    assert err.headers == {"x-ratelimit-limit-tokens": "9", "Retry-After": "2"}


def test_request_ids_are_kept_when_plain_and_minted_otherwise() -> None:
    assert request_id_from("abc-123") == "abc-123"
    assert request_id_from("a b").startswith("req_")
    assert request_id_from("x" * 200).startswith("req_")
    assert request_id_from(None).startswith("req_")


def test_the_usage_report_is_cumulative_and_sorted() -> None:
    counters = UsageCounters()
    counters.add(UsageRecord("1", "b", "k1", "p", 1, 2, "t1"))
    counters.add(UsageRecord("2", "a", "k2", "p", 3, 4, "t2"))
    counters.add(UsageRecord("3", "a", "k2", "p", 3, 4, "t3"))
    report = build_usage_report("pod-1", "ns", "demo", counters)
    assert report["metadata"] == {
        "name": "pod-1",
        "namespace": "ns",
        "labels": {"app.kubernetes.io/part-of": "paitient", "paitient.ai/model-deployment": "demo"},
    }
    assert report["spec"]["entries"] == [
        {
            "tenant": "a",
            "periodStart": "p",
            "promptTokens": 6,
            "completionTokens": 8,
            "requests": 2,
        },
        {
            "tenant": "b",
            "periodStart": "p",
            "promptTokens": 1,
            "completionTokens": 2,
            "requests": 1,
        },
    ]
    assert report["spec"]["keyLastUsed"] == {"k1": "t1", "k2": "t3"}


def test_the_usage_report_is_what_the_operator_reads() -> None:
    counters = UsageCounters()
    counters.add(UsageRecord("1", "acme", "k1", "2026-11-01T00:00:00Z", 1, 2, "t1"))
    parsed = parse_usage_report(build_usage_report("pod-1", "ns", "demo", counters))
    assert parsed.spec.entries[0].prompt_tokens == 1
    assert parsed.spec.model_deployment == "demo"
