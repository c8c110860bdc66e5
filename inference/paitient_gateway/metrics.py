"""Prometheus metrics on the gateway's own registry, with OpenTelemetry GenAI names where they exist.

Labels are bounded: route (the four proxied routes or ``other``), status code, token type,
rejection reason from a fixed list. No tenant, key or model label: tenants are counted in the
UsageReport, not in time series.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

REJECTION_REASONS: Final = (
    "authentication",
    "permission",
    "not_ready",
    "invalid_request",
    "body_too_large",
    "rate_limit",
    "usage_limit",
    "upstream_error",
    "upstream_timeout",
    "not_found",
)

_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144)


class GatewayMetrics:
    """Every series the gateway exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "paitient_gateway_requests",
            "Requests answered, by route and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Time from request to last byte (OpenTelemetry gen_ai.server.request.duration).",
            ["gen_ai_operation_name"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first generated token of a stream (gen_ai.server.time_to_first_token).",
            ["gen_ai_operation_name"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request by type, input or output (gen_ai.client.token.usage).",
            ["gen_ai_operation_name", "gen_ai_token_type"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "paitient_gateway_tokens",
            "Tokens billed, by type (input = prompt, output = completion).",
            ["gen_ai_token_type"],
            registry=r,
        )
        self.rejections = Counter(
            "paitient_gateway_rejections",
            "Requests refused or failed before an answer, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason)
        self.in_flight = Gauge(
            "paitient_gateway_in_flight_requests", "Requests being served now.", registry=r
        )
        self.in_flight_completions = Gauge(
            "paitient_gateway_in_flight_completions",
            "Completion and chat requests being served now (streams until their last byte): "
            "the load the front doors' replica pickers and an autoscaler read.",
            registry=r,
        )
        self.draining = Gauge(
            "paitient_gateway_draining",
            "1 from SIGTERM on: not ready, finishing the requests in progress.",
            registry=r,
        )
        self.ledger_tokens = Gauge(
            "paitient_gateway_ledger_tokens",
            "Tokens in this pod's usage ledger (replayed plus new), by type.",
            ["gen_ai_token_type"],
            registry=r,
        )
        self.ledger_requests = Gauge(
            "paitient_gateway_ledger_requests", "Requests in this pod's usage ledger.", registry=r
        )
        self.report_failures = Counter(
            "paitient_gateway_usage_report_failures",
            "UsageReport writes that failed (retried at the next interval).",
            registry=r,
        )
        self.fallback_admissions = Counter(
            "paitient_gateway_fallback_admissions",
            "Requests admitted on this gateway's share of the limits while the shared store "
            "was unreachable.",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def operation_name(route: str) -> str:
    """The GenAI operation a route performs."""
    return {"/v1/chat/completions": "chat", "/v1/completions": "text_completion"}.get(
        route, "other"
    )
