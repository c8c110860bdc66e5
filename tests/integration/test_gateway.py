"""The gateway as a real process in front of the vLLM stand-in, both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from tests.integration.forwarded_headers import client_headers, leaks
from tests.integration.waiting import wait_for
from tests.standins.client import Answer, call, run, sync_call
from tests.standins.processes import (
    Caller,
    Proc,
    configure_standin,
    start_gateway,
    start_standin,
    write_keys_file,
)

TINY_TIER = {
    "tokenLimit": 1_000_000,
    "requestsPerMinute": 2,
    "tokensPerMinute": 100_000,
    "maxDeployments": 1,
    "maxGpus": 0,
    "gpusAllowed": False,
}

# 30 tokens a minute: a 25-token reservation leaves too few for a second.
THRIFTY_TIER = {**TINY_TIER, "requestsPerMinute": 100, "tokensPerMinute": 30}


@dataclass
class Stack:
    standin: Proc
    gateway: Proc
    callers: dict[str, Caller]
    keys_file: Path

    def url(self, path: str) -> str:
        return self.gateway.url + path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("gateway")
    standin = start_standin(tmp)
    gateway = None
    try:
        keys = tmp / "keys.json"
        callers = write_keys_file(
            keys,
            [
                {"name": "acme", "clientId": "acme-app", "namespace": "tenant-acme"},
                {"name": "partner", "clientId": "partner-app", "namespace": "tenant-partner"},
                {"name": "outsider", "clientId": "outsider-app", "namespace": "tenant-out"},
                {
                    "name": "frozen",
                    "clientId": "frozen-app",
                    "suspended": True,
                    "namespace": "tenant-acme",
                },
                {
                    "name": "tiny",
                    "clientId": "tiny-app",
                    "tier": "tiny",
                    "namespace": "tenant-acme",
                },
                {
                    "name": "capped",
                    "clientId": "capped-app",
                    "usageLimit": 60,
                    "namespace": "tenant-acme",
                },
                {"name": "streamer", "clientId": "streamer-app", "namespace": "tenant-acme"},
                {
                    "name": "thrifty",
                    "clientId": "thrifty-app",
                    "tier": "thrifty",
                    "namespace": "tenant-acme",
                },
            ],
            allowed_namespaces=["tenant-partner"],
        )
        data = json.loads(keys.read_text())
        data["tiers"] = {"tiny": TINY_TIER, "thrifty": THRIFTY_TIER}
        keys.write_text(json.dumps(data))
        gateway = start_gateway(
            tmp,
            keys,
            tmp / "ledger",
            standin.url,
            env={"PAITIENT_UPSTREAM_READ_TIMEOUT": "3"},
        )
        yield Stack(standin, gateway, callers, keys)
    finally:
        if gateway is not None:
            gateway.stop()
        standin.stop()


@pytest.fixture(autouse=True)
def reset_standin(stack: Stack) -> Iterator[None]:
    yield
    configure_standin(stack.standin, fail=None, latency=0, tokens_per_second=0, hold_after=None)


def post(stack: Stack, path: str, body: object, caller: str = "acme") -> Answer:
    return sync_call("POST", stack.url(path), body, headers=stack.callers[caller].headers())


@contextlib.asynccontextmanager
async def open_stream(
    stack: Stack, path: str, body: object, caller: str
) -> AsyncIterator[aiohttp.ClientResponse]:
    """A streamed request through the gateway, read by the caller as it arrives."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(stack.url(path), json=body, headers=stack.callers[caller].headers()) as r,
    ):
        yield r


def upstream_last(stack: Stack) -> dict[str, object]:
    answer = sync_call("GET", f"{stack.standin.url}/standin/last")
    last: dict[str, object] = answer.json()["last"]
    return last


def upstream_headers(stack: Stack) -> list[tuple[str, str]]:
    """Every header of the last request the stand-in received, in order."""
    return [
        (n, v) for n, v in sync_call("GET", f"{stack.standin.url}/standin/last").json()["headers"]
    ]


def test_a_completion_is_forwarded_with_the_served_model_and_rate_headers(stack: Stack) -> None:
    answer = post(stack, "/v1/completions", {"model": "gpt-4", "prompt": "a b c", "max_tokens": 4})
    assert answer.status == 200
    assert answer.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert upstream_last(stack)["model"] == "standin-model"
    assert re.fullmatch(r"req_[0-9a-f]{32}", answer.headers["x-request-id"])
    for name in ("requests", "tokens"):
        for what in ("limit", "remaining", "reset"):
            assert f"x-ratelimit-{what}-{name}" in answer.headers


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"prompt": "a b c", "max_tokens": 2}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}),
    ],
    ids=["completion", "chat-stream"],
)
def test_no_client_header_reaches_vllm(stack: Stack, path: str, body: dict[str, object]) -> None:
    """The key, the client ID, cookies, proxy and tracing headers, the client's own request id
    and user agent: none of them, nor any of their values, is in what the stand-in received;
    only the headers the gateway's own HTTP client sets, with values of its own."""
    caller = stack.callers["acme"]
    sent = client_headers(caller.key, caller.client_id)
    answer = sync_call("POST", stack.url(path), body, headers=sent)
    assert answer.status == 200, answer.body[:300]
    received = upstream_headers(stack)
    assert {n.lower() for n, _ in received} >= {"host", "content-type"}  # a request was seen
    assert upstream_last(stack)["model"] == "standin-model"  # ... and it was this one
    assert not leaks(received, sent), leaks(received, sent)


def test_a_stream_passes_chunk_by_chunk_without_usage_the_client_did_not_ask_for(
    stack: Stack,
) -> None:
    # The stand-in stops after two tokens until released: what the client has by then went
    # through the gateway one event at a time, not in a lump at the end.
    configure_standin(stack.standin, hold_after=2)
    body = {"messages": [{"role": "user", "content": "one two"}], "max_tokens": 5, "stream": True}

    async def read() -> tuple[Answer, bytes]:
        async with open_stream(stack, "/v1/chat/completions", body, "acme") as r:

            async def until_the_hold() -> bytes:
                seen = b""
                while b"two " not in seen and (chunk := await r.content.readany()):
                    seen += chunk
                return seen

            try:
                before = await asyncio.wait_for(until_the_hold(), timeout=20)
            except TimeoutError:
                pytest.fail("no token reached the client while the model was still generating")
            await call("POST", f"{stack.standin.url}/standin/release")
            after = await r.content.read()
            return Answer(r.status, CIMultiDict(r.headers), before + after), before

    answer, before_release = run(read())
    assert b"one " in before_release and b"[DONE]" not in before_release
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    assert "x-ratelimit-remaining-tokens" in answer.headers
    assert upstream_last(stack)["stream_options"] == {
        "include_usage": True,
        "continuous_usage_stats": True,
    }
    events = answer.events()
    assert events[-1] == "[DONE]"
    assert all("usage" not in e for e in events[:-1])
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text.split() == ["one", "two", "one", "two", "one"]


def test_a_client_that_asks_for_usage_gets_the_usage_chunk(stack: Stack) -> None:
    body = {
        "prompt": "one two three",
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = post(stack, "/v1/completions", body).events()
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["completion_tokens"] == 3
    assert all("usage" not in e for e in events[:-2])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/tokenize"),
        ("POST", "/detokenize"),
        ("GET", "/version"),
        ("POST", "/start_profile"),
        ("POST", "/reset_prefix_cache"),
        ("GET", "/health"),
        ("POST", "/standin/config"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/completions"),
        ("GET", "/v1/../tokenize"),
    ],
)
def test_vllms_other_routes_are_not_reachable(stack: Stack, method: str, path: str) -> None:
    answer = sync_call(
        method, stack.url(path), {"prompt": "x"}, headers=stack.callers["acme"].headers()
    )
    assert answer.status == 404
    assert answer.json()["error"]["type"] == "not_found_error"
    assert answer.json()["error"]["request_id"] == answer.headers["x-request-id"]


def test_every_authentication_failure_looks_the_same(stack: Stack) -> None:
    acme, partner = stack.callers["acme"], stack.callers["partner"]
    attempts = [
        {},
        {"Authorization": f"Bearer {acme.key}"},
        {"Authorization": f"Bearer {acme.key}", "X-Client-ID": "partner-app"},
        {"Authorization": f"Bearer {acme.key[:-1]}x", "X-Client-ID": "acme-app"},
        {"Authorization": f"Bearer {partner.key}", "X-Client-ID": "acme-app"},
        {"Authorization": "Basic Zm9vOmJhcg==", "X-Client-ID": "acme-app"},
    ]
    bodies = set()
    for headers in attempts:
        answer = sync_call("POST", stack.url("/v1/completions"), {"prompt": "x"}, headers=headers)
        assert answer.status == 401
        error = answer.json()["error"]
        bodies.add((error["type"], error["message"]))
    assert bodies == {("authentication_error", "invalid API key or client ID")}


def test_suspended_and_foreign_tenants_are_refused_and_allowed_namespaces_served(
    stack: Stack,
) -> None:
    body = {"prompt": "x", "max_tokens": 1}
    for caller in ("frozen", "outsider"):
        answer = post(stack, "/v1/completions", body, caller)
        assert answer.status == 403, caller
        assert answer.json()["error"]["type"] == "permission_error"
    assert post(stack, "/v1/completions", body, "partner").status == 200
    models = sync_call("GET", stack.url("/v1/models"), headers=stack.callers["partner"].headers())
    assert [m["id"] for m in models.json()["data"]] == ["standin-model"]


def test_a_body_over_the_limit_is_refused(stack: Stack) -> None:
    raw = json.dumps({"prompt": "x" * (1024 * 1024 + 10)}).encode()
    answer = sync_call(
        "POST", stack.url("/v1/completions"), raw=raw, headers=stack.callers["acme"].headers()
    )
    assert answer.status == 413
    assert answer.json()["error"]["type"] == "validation_error"


def test_upstream_failures_are_service_errors_without_detail(stack: Stack) -> None:
    configure_standin(stack.standin, fail="status500")
    answer = post(stack, "/v1/completions", {"prompt": "x", "max_tokens": 1})
    assert answer.status == 502
    assert answer.json()["error"]["type"] == "service_error"
    assert b"STANDIN" not in answer.body and b"Traceback" not in answer.body

    # A hung model never answers: only the gateway's read timeout (3 s here, room for the held stream of the chunk test) can end it.
    configure_standin(stack.standin, fail="hang")
    answer = post(stack, "/v1/completions", {"prompt": "x", "max_tokens": 1})
    assert answer.status == 504
    assert answer.json()["error"]["type"] == "service_error"

    configure_standin(stack.standin, fail="cut_stream")
    answer = post(stack, "/v1/completions", {"prompt": "a b", "max_tokens": 9, "stream": True})
    assert answer.status == 200  # the headers had gone: the error is the last event
    assert answer.events()[-1]["error"]["type"] == "service_error"


def test_health_follows_the_upstream(stack: Stack) -> None:
    for path in ("/healthz/live", "/healthz/ready", "/healthz/upstream"):
        assert sync_call("GET", stack.url(path)).status == 200
    configure_standin(stack.standin, fail="unhealthy")
    assert sync_call("GET", stack.url("/healthz/live")).status == 200
    for path in ("/healthz/ready", "/healthz/upstream"):
        answer = sync_call("GET", stack.url(path))
        assert answer.status == 503
        assert answer.json()["error"]["type"] == "service_error"


def test_metrics_use_genai_names(stack: Stack) -> None:
    post(stack, "/v1/completions", {"prompt": "x", "max_tokens": 1})
    text = sync_call("GET", stack.url("/metrics")).body.decode()
    for name in (
        "gen_ai_client_token_usage_bucket",
        "gen_ai_server_request_duration_seconds_bucket",
        "gen_ai_server_time_to_first_token_seconds",
        "paitient_gateway_requests_total",
        'paitient_gateway_rejections_total{reason="rate_limit"}',
        "paitient_gateway_in_flight_requests",
        'paitient_gateway_tokens_total{gen_ai_token_type="output"}',
    ):
        assert name in text


def test_a_tenant_over_its_rate_gets_429_with_headers(stack: Stack) -> None:
    body = {"prompt": "x", "max_tokens": 1, "stream": True}
    answers = [post(stack, "/v1/completions", body, "tiny") for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "2"
    refused = answers[2]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_tenant_over_its_tokens_per_minute_gets_429_with_what_is_left(
    stack: Stack,
) -> None:
    """The refusal. That the 4 tokens reserved and not used go back is exact only where the
    bucket can be read: tests/store/test_refund.py, against the shared store (here they would
    be indistinguishable from a few seconds' refill)."""
    # A 12-byte prompt is estimated at 5 tokens but is one word (one token) to the stand-in:
    # the first request reserves 5 + 20 of the 30 and really uses 1 + 20.
    body = {"prompt": "abcdefghijkl", "max_tokens": 20}
    first = post(stack, "/v1/completions", body, "thrifty")
    assert first.status == 200 and first.json()["usage"]["total_tokens"] == 21
    assert first.headers["x-ratelimit-limit-tokens"] == "30"
    refused = post(stack, "/v1/completions", body, "thrifty")
    assert refused.status == 429
    assert refused.json()["error"] == {
        "type": "rate_limit_error",
        "message": "rate limit exceeded (tokens per minute)",
        "request_id": refused.headers["x-request-id"],
    }
    assert int(refused.headers["x-ratelimit-remaining-tokens"]) < 25
    assert int(refused.headers["Retry-After"]) >= 1


def test_concurrent_requests_cannot_overshoot_the_usage_limit(stack: Stack) -> None:
    # "a b c" is estimated at 3 tokens, so each request reserves 3 + 10 of the 60 allowed.
    configure_standin(stack.standin, latency=0.3)
    body = {"prompt": "a b c", "max_tokens": 10}

    async def burst() -> list[Answer]:
        headers = stack.callers["capped"].headers()
        url = stack.url("/v1/completions")
        return list(await asyncio.gather(*(call("POST", url, body, headers) for _ in range(8))))

    answers = run(burst())
    ok = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status == 429]
    assert len(ok) == 4 and len(refused) == 4
    assert sum(a.json()["usage"]["total_tokens"] for a in ok) <= 60
    assert refused[0].json()["error"]["message"] == "usage limit for the period reached"


def ledger_tokens(stack: Stack) -> tuple[float, float]:
    text = sync_call("GET", stack.url("/metrics")).body.decode()
    found = dict(
        re.findall(r'paitient_gateway_ledger_tokens\{gen_ai_token_type="(\w+)"\} (\S+)', text)
    )
    return float(found["input"]), float(found["output"])


def test_a_client_that_leaves_mid_stream_is_billed_for_what_was_generated(stack: Stack) -> None:
    configure_standin(stack.standin, tokens_per_second=20)
    before = ledger_tokens(stack)

    async def leave_early() -> int:
        body = {"prompt": "w1 w2 w3 w4", "max_tokens": 40, "stream": True}
        seen = 0
        async with open_stream(stack, "/v1/completions", body, "streamer") as r:
            async for chunk in r.content.iter_any():
                seen += chunk.count(b'"text"')
                if seen >= 3:
                    break
        return seen

    seen = run(leave_early())
    wait_for(lambda: ledger_tokens(stack) != before, what="the abandoned stream in the ledger")
    prompt, completion = (a - b for a, b in zip(ledger_tokens(stack), before, strict=True))
    assert prompt == 4
    assert seen <= completion < 40
