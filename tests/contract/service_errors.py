"""The error answers the SDKs' stand-ins give, recorded from the front door itself.

The SDKs must not depend on the service, so their tests cannot import its error definitions.
Instead this module drives the real front-door application (``create_app``, in this process, as
the unit tests do) through each case and writes what it answered to ``sdk/testdata/errors.json``,
which the Python fake server and the JavaScript stand-in answer from. A unit test checks the
file is what the code answers today; an integration test replays the cases against the running
front door on the local cluster.

    python -m tests.contract.service_errors --write
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from paitient_common.errors import ApiError, error_body
from paitient_gateway.errors import (
    LimitExceeded,
    UpstreamNotAccepting,
    upstream_failed,
    upstream_timeout,
)
from paitient_gateway.limits import RateLimiter, UsageGuard
from paitient_gateway.proxy import _upstream_status_error  # the gateway's own mapping
from paitient_gateway.usage import prepare_request
from tests.standins.vllm_standin import create_app as standin_app
from tests.unit.frontdoor.support import ACME, InMemoryCluster, call, front_door, serve

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "sdk" / "testdata" / "errors.json"
UNKNOWN_KEY = "psk_aaaaaaaaaaaa_" + "A" * 43
GENERATE = {"deployment_id": "deployment-123", "prompt": "Hello"}

# name: the request that provokes it. Credentials: "good" (a tenant's own key), "unknown" (a
# well-formed key nobody has), "suspended" (the key of a suspended tenant). A ready
# deployment "deployment-123" exists; "missing" does not.
CASES: dict[str, dict[str, Any]] = {
    "authentication": {"method": "GET", "path": "/v1/subscription", "credentials": "unknown"},
    "suspended": {"method": "GET", "path": "/v1/subscription", "credentials": "suspended"},
    "no_such_route": {"method": "GET", "path": "/v1/no-such-route"},
    "deployment_not_found": {"method": "GET", "path": "/v1/deployments/missing"},
    "deployment_exists": {
        "method": "POST",
        "path": "/v1/deployments",
        "body": {"model_name": "org/model", "deployment_name": "deployment-123"},
    },
    "model_name_missing": {"method": "POST", "path": "/v1/deployments", "body": {}},
    "deployment_name_invalid": {
        "method": "POST",
        "path": "/v1/deployments",
        "body": {"model_name": "org/model", "deployment_name": "Bad_Name"},
    },
    "generate_deployment_not_found": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "deployment_id": "missing"},
    },
    "prompt_empty": {"method": "POST", "path": "/v1/generate", "body": {**GENERATE, "prompt": ""}},
    "max_tokens_too_small": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "max_tokens": 0},
    },
    "max_tokens_not_an_integer": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "max_tokens": "many"},
    },
    "max_tokens_too_large": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "max_tokens": 32769},
    },
    "temperature_too_low": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "temperature": -0.1},
    },
    "temperature_too_high": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "temperature": 2.5},
    },
    # The OpenAI-compatible route answers in OpenAI's shape (with param and code); the empty
    # conversation is refused by the model (vLLM's words, through the gateway and front door).
    "chat_messages_empty": {
        "method": "POST",
        "path": "/v1/chat/completions",
        "body": {"model": "deployment-123", "messages": []},
    },
    "chat_model_unknown": {
        "method": "POST",
        "path": "/v1/chat/completions",
        "body": {"model": "missing", "messages": [{"role": "user", "content": "Hello"}]},
    },
    # The front door's own 503 (a retry may succeed) and 500 (its own failure, fixed words).
    "deployment_not_ready": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "deployment_id": "warming"},
    },
    "internal_error": {
        "method": "POST",
        "path": "/v1/generate",
        "body": {**GENERATE, "deployment_id": "breaks-the-front-door"},
    },
}
# What a deployment's gateway answers, passed on by the front door: each made by the gateway's
# own code (its limiter, its usage guard, its errors for a model server that is loading, slow or
# failing), or the front door's own answer when the gateway drops the connection. The request
# is GENERATE; the case name says what stood behind it.
THROUGH_THE_GATEWAY = (
    "rate_limited",
    "usage_limit_reached",
    "model_loading",
    "model_timeout",
    "model_failed",
    "gateway_unreachable",
)
# Headers an error answer carries that a client may act on (request ids vary and are left out).
KEPT_HEADERS = ("WWW-Authenticate", "Retry-After", "Allow")


def credentials(which: str, good_key: str, good_client_id: str, **keys: str) -> dict[str, str]:
    if which == "unknown":
        return {"Authorization": f"Bearer {UNKNOWN_KEY}", "X-Client-ID": good_client_id}
    if which == "suspended":
        return {"Authorization": f"Bearer {keys['suspended']}", "X-Client-ID": "frozen-clinic"}
    return {"Authorization": f"Bearer {good_key}", "X-Client-ID": good_client_id}


def answer_of(status: int, headers: Any, body: Any) -> dict[str, Any]:
    """What a stand-in must answer: status, the headers that matter, the body without its id
    (an answer that is no error, e.g. a 200 while waiting for one, keeps its body whole)."""
    if not isinstance(body, dict) or "error" not in body:
        return {"status": status, "headers": {}, "body": body}
    error = dict(body["error"])
    error.pop("request_id", None)
    kept = {h: headers[h] for h in KEPT_HEADERS if h in headers}
    return {"status": status, "headers": kept, "body": {"error": error}}


def _refusing_gateway(model_url: str) -> web.Application:
    """A deployment's gateway as far as its answer to a request it or its model refuses: the
    gateway's own parsing (``prepare_request``), then the model (the vLLM stand-in, which
    refuses as vLLM 0.32 does), its refusal mapped by the gateway's own code."""

    async def refuse(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            prepared = prepare_request(request.path, raw, "org/model", 4096)
            async with (
                aiohttp.ClientSession() as session,
                session.post(model_url + request.path, data=prepared.body) as model,
            ):
                payload = await model.read()
                if model.status < 400:
                    raise AssertionError(f"every case here is refused; {request.path} was not")
                raise _upstream_status_error(model.status, payload)
        except ApiError as err:
            return web.json_response(error_body(err, "gateway-id"), status=err.status)

    gateway = web.Application()
    gateway.router.add_post("/v1/{route:.*}", refuse)
    return gateway


def _gateway_refusal(name: str) -> ApiError | None:
    """The gateway's own error for ``name`` (None: it drops the connection instead)."""
    if name == "rate_limited":  # a tier of one request a minute, its request taken
        limiter = RateLimiter(clock=lambda: 0.0)
        limiter.admit(ACME.name, rpm=1, tpm=10**6, tokens=1)
        try:
            limiter.admit(ACME.name, rpm=1, tpm=10**6, tokens=1)
        except LimitExceeded as refused:
            return refused
        raise AssertionError("the limiter admitted a second request a minute")
    if name == "usage_limit_reached":  # 10 tokens used of 10, an hour left in the period
        try:
            UsageGuard().reserve(ACME.name, "2026-11-01", 10, 10, 1, retry_after=3600.0)
        except LimitExceeded as refused:
            return refused
        raise AssertionError("the usage guard admitted past the limit")
    return {
        "model_loading": UpstreamNotAccepting(),
        "model_timeout": upstream_timeout(),
        "model_failed": upstream_failed(),
    }.get(name)


async def _through_the_gateway(cluster: InMemoryCluster, name: str) -> dict[str, Any]:
    refusal = _gateway_refusal(name)

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        if refusal is None:
            assert request.transport is not None
            request.transport.close()  # no answer at all
            return web.Response()
        body = error_body(refusal, "gateway-id")
        return web.json_response(body, status=refusal.status, headers=refusal.headers)

    gateway = web.Application()
    gateway.router.add_post("/v1/{route:.*}", answer)
    async with (
        serve(gateway, tls=True) as gateway_url,
        front_door(cluster, gateway_url) as (url, keys),
    ):
        headers = credentials("good", keys.plaintext["acme"], ACME.client_id)
        status, got, body = await call("POST", f"{url}/v1/generate", GENERATE, headers)
    request = {"method": "POST", "path": "/v1/generate", "body": GENERATE, "gateway": name}
    return {"request": request, **answer_of(status, got, body)}


class _BreakingCluster(InMemoryCluster):
    """The cluster as the front door reads it, failing in a way nothing expects for one name:
    what the front door answers to a failure of its own."""

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        if name == "breaks-the-front-door":
            raise RuntimeError("an unexpected failure inside the front door")
        return super().get(api_version, kind, name, namespace)


async def _record() -> dict[str, Any]:
    cluster = _BreakingCluster()
    cluster.add(ACME.namespace, "deployment-123", model="org/model")
    cluster.add(ACME.namespace, "warming", phase="Pending", model="org/model")  # no GPU free
    errors: dict[str, Any] = {}
    async with (
        serve(standin_app("org/model")) as model_url,
        serve(_refusing_gateway(model_url), tls=True) as gateway_url,
        front_door(cluster, gateway_url) as (url, keys),
    ):
        for name, case in CASES.items():
            headers = credentials(
                case.get("credentials", "good"),
                keys.plaintext["acme"],
                ACME.client_id,
                suspended=keys.plaintext["frozen"],
            )
            status, got, body = await call(
                case["method"], url + case["path"], case.get("body"), headers
            )
            errors[name] = {"request": case, **answer_of(status, got, body)}
    for name in THROUGH_THE_GATEWAY:
        errors[name] = await _through_the_gateway(cluster, name)
    errors["stream_interrupted"] = await _stream_interrupted(cluster)
    return errors


async def _stream_interrupted(cluster: InMemoryCluster) -> dict[str, Any]:
    """The last event of a stream whose deployment went away after the first text."""

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"text": "Hello"}]}\n\n')
        assert request.transport is not None
        request.transport.close()
        return response

    gateway = web.Application()
    gateway.router.add_post("/v1/completions", cut)
    async with (
        serve(gateway, tls=True) as gateway_url,
        front_door(cluster, gateway_url) as (url, keys),
    ):
        headers = credentials("good", keys.plaintext["acme"], ACME.client_id)
        _, _, text = await call("POST", f"{url}/v1/generate", {**GENERATE, "stream": True}, headers)
    events = [json.loads(e[6:]) for e in text.split("\n\n") if e.startswith("data: {")]
    error = dict(events[-1]["error"])
    error.pop("request_id")
    return {"request": None, "event": {"error": error}}


def render() -> dict[str, Any]:
    return {
        "_about": (
            "What the front door answers, recorded from its own code by "
            "`python -m tests.contract.service_errors --write`; request ids left out. The SDKs' "
            "stand-ins answer from this file; tests/unit/test_service_errors_fixture.py keeps it "
            "in sync."
        ),
        "errors": asyncio.run(_record()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {FIXTURE.relative_to(REPO)}")
    args = parser.parse_args()
    text = json.dumps(render(), indent=2, sort_keys=True) + "\n"
    if args.write:
        FIXTURE.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
