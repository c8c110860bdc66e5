"""The gateway's errors, key snapshots and usage report (pure parts)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from paitient_common.apikeys import generate_api_key, new_record, records_to_secret_data
from paitient_common.errors import ConflictError, error_body
from paitient_common.keycache.directory import (
    Directory,
    FileKeySource,
    snapshot_from_objects,
)
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


def tenant(name: str, ns: str | None = None, suspended: bool = False) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {"clientId": f"{name}-app", "tier": "free", "suspended": suspended},
        "status": {
            "namespace": ns or f"tenant-{name}",
            "usageLimit": 500,
            "currentUsage": 42,
            "periodStart": "2026-11-01T00:00:00Z",
        },
    }


def test_a_snapshot_from_api_objects() -> None:
    key = generate_api_key()
    record = new_record(key, PEPPER, "acme", "acme-app", datetime.now(UTC))
    snap = snapshot_from_objects(
        [{"data": records_to_secret_data([record])}],
        {"data": {"pepper": base64.b64encode(PEPPER).decode()}},
        [tenant("acme"), {"metadata": {"name": "broken"}, "spec": {}}],
        {"spec": {"access": {"allowedNamespaces": ["tenant-partner"]}}},
        {
            "data": {
                "tiny": json.dumps(
                    {
                        "tokenLimit": 10,
                        "requestsPerMinute": 1,
                        "tokensPerMinute": 10,
                        "maxDeployments": 0,
                        "maxGpus": 0,
                        "gpusAllowed": False,
                    }
                ),
                "bad": "{",
            }
        },
    )
    directory = Directory()
    directory.apply(snap)
    assert directory.loaded
    assert directory.allowed_namespaces == {"tenant-partner"}
    assert directory.usage["acme"].current_usage == 42
    assert directory.tier("tiny").requests_per_minute == 1
    assert directory.tier("unknown").requests_per_minute == 600  # standard
    verified = directory.keys.verify(f"Bearer {key.plaintext}", "acme-app")
    assert not hasattr(verified, "reason")


def test_a_keys_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    data = {"pepper": base64.b64encode(PEPPER).decode(), "records": [], "tenants": []}
    path.write_text(json.dumps(data))
    source, directory = FileKeySource(path), Directory()
    assert source.load_once(directory)
    assert not source.load_once(directory)  # unchanged
    data["tenants"] = [{"name": "acme", "clientId": "acme-app"}]
    path.write_text(json.dumps(data) + " ")
    assert source.load_once(directory)
    assert directory.keys.tenant("acme") is not None
    path.write_text("{half")  # a half-written file keeps the last good one
    assert not source.load_once(directory)
    assert directory.keys.tenant("acme") is not None


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
