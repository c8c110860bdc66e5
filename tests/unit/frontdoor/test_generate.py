"""``/v1/generate`` (``paitient_api.generate``): forwarded to the deployment's gateway, answers
translated, streams relayed, failures answered in the one error shape. The gateway is the vLLM
stand-in (it speaks the protocol the gateway passes through) or, for failures, a scripted one,
served over TLS as gateways are."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import web

from paitient_common.errors import RateLimitError, error_body
from tests.standins.vllm_standin import create_app as standin_app
from tests.unit.frontdoor.support import InMemoryCluster, call, front_door, serve

SERVED = "standin-model"
PROMPT_MARK = "PATIENT-MRN-7788-PROMPT"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def cluster(phase: str = "Ready") -> InMemoryCluster:
    c = InMemoryCluster()
    c.add("tenant-acme", "md-1", phase=phase, model=SERVED)
    c.add("tenant-other", "theirs", model=SERVED)
    return c


async def generate(gateway: web.Application | None, body: dict[str, Any], **kw: Any) -> Any:
    """POST /v1/generate for acme through a front door whose every route leads to ``gateway``."""

    async def go(gateway_url: str) -> Any:
        async with front_door(kw.get("cluster") or cluster(), gateway_url) as (url, keys):
            return await call("POST", f"{url}/v1/generate", body, keys.headers())

    if gateway is None:
        return await go(kw.get("gateway_url", "https://127.0.0.1:9"))
    async with serve(gateway, tls=True) as gateway_url:
        return await go(gateway_url)


def sse(text: str) -> list[Any]:
    return [
        "[DONE]" if e[6:] == "[DONE]" else json.loads(e[6:])
        for e in text.split("\n\n")
        if e.startswith("data: ")
    ]


def test_a_generation_is_answered_from_the_gateways_completion() -> None:
    body = {"deployment_id": "md-1", "prompt": "a b c", "max_tokens": 4}
    status, _, answer = run(generate(standin_app(SERVED), body))
    assert status == 200
    assert answer["deployment_id"] == "md-1" and answer["id"].startswith("cmpl-")
    assert (answer["text"], answer["finish_reason"]) == ("a b c a ", "length")
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_a_stream_is_relayed_as_text_events_then_finish_and_usage() -> None:
    body = {"deployment_id": "md-1", "prompt": "one two", "max_tokens": 3, "stream": True}
    status, headers, text = run(generate(standin_app(SERVED), body))
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = sse(text)
    assert events[:3] == [{"text": "one "}, {"text": "two "}, {"text": "one "}]
    assert events[3] == {
        "finish_reason": "length",
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }
    assert events[4:] == ["[DONE]"]


def test_the_gateway_gets_the_served_model_and_the_callers_credentials() -> None:
    seen: list[tuple[Any, Any]] = []

    async def gateway(request: web.Request) -> web.Response:
        seen.append((request.headers.copy(), await request.json()))
        return web.json_response({"id": "c", "choices": [{"text": "x"}], "usage": {}})

    app = web.Application()
    app.router.add_post("/v1/completions", gateway)
    body = {"deployment_id": "md-1", "prompt": "hi", "max_tokens": 5, "temperature": 0.5}
    status, headers, _ = run(generate(app, body))
    assert status == 200
    sent_headers, sent = seen[0]
    assert sent == {
        "model": SERVED,
        "prompt": "hi",
        "max_tokens": 5,
        "temperature": 0.5,
        "stream": False,
    }
    assert sent_headers["X-Client-ID"] == "acme-clinic"
    assert sent_headers["Authorization"].startswith("Bearer psk_")
    assert sent_headers["x-request-id"] == headers["x-request-id"]  # one id end to end


@pytest.mark.parametrize(
    ("phase", "gateway_url", "status", "message"),
    [
        ("Progressing", None, 503, "deployment md-1 is not ready (status: progressing)"),
        ("Failed", None, 503, "deployment md-1 is not ready (status: failed)"),
        ("Ready", "file:/nonexistent/routes.json", 503, "deployment md-1 has no gateway yet"),
        ("Ready", "https://127.0.0.1:9", 502, "the gateway of deployment md-1 is unreachable"),
        (
            "Ready",
            "http://127.0.0.1:9",
            502,
            "the route to deployment md-1's gateway is not HTTPS; prompts are never sent in plain text",
        ),
    ],
)
def test_a_deployment_that_cannot_serve_is_a_service_error(
    phase: str, gateway_url: str | None, status: int, message: str
) -> None:
    body = {"deployment_id": "md-1", "prompt": "hi"}
    kw: dict[str, Any] = {"cluster": cluster(phase)}
    if gateway_url:
        kw["gateway_url"] = gateway_url
    got, _, answer = run(generate(None, body, **kw))
    assert (got, answer["error"]["type"], answer["error"]["message"]) == (
        status,
        "service_error",
        message,
    )


def test_another_tenants_deployment_is_not_found() -> None:
    body = {"deployment_id": "theirs", "prompt": "hi"}
    status, _, answer = run(generate(standin_app(SERVED), body))
    assert (status, answer["error"]["type"]) == (404, "not_found_error")


def test_the_gateways_own_error_is_passed_on_and_anything_else_is_a_502() -> None:
    async def limited(_: web.Request) -> web.Response:
        err = RateLimitError("usage limit for the period reached", retry_after=3)
        return web.json_response(error_body(err, "gw-id"), status=429, headers=err.headers)

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="Traceback (most recent call last): internals")

    answers = []
    for handler in (limited, broken):
        app = web.Application()
        app.router.add_post("/v1/completions", handler)
        answers.append(run(generate(app, {"deployment_id": "md-1", "prompt": "hi"})))
    (status, headers, body), (bad_status, _, bad) = answers
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"] == "usage limit for the period reached"
    assert body["error"]["request_id"] == headers["x-request-id"]  # the front door's id
    assert bad_status == 502 and bad["error"]["message"] == "upstream answered an unexpected error"
    assert "Traceback" not in json.dumps(bad)


def test_a_stream_the_gateway_cuts_or_fails_ends_with_an_error_event_then_done() -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"text": "partial"}]}\n\n')
        await response.write(b'data: {"choices": [{"te')  # then the connection drops
        assert request.transport is not None
        request.transport.close()
        return response

    async def failing(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"text": "partial"}]}\n\n')
        err = {"error": {"type": "service_error", "message": "the model server failed"}}
        await response.write(f"data: {json.dumps(err)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    results = []
    for handler in (cut, failing):
        app = web.Application()
        app.router.add_post("/v1/completions", handler)
        body = {"deployment_id": "md-1", "prompt": "hi", "stream": True}
        results.append(run(generate(app, body)))
    (status, headers, cut_text), (_, _, failed_text) = results
    assert status == 200  # the headers had gone out: the error travels in the stream
    events = sse(cut_text)
    assert events[0] == {"text": "partial"} and events[-1] == "[DONE]"
    assert events[1]["error"]["message"] == "the stream from the deployment was interrupted"
    assert events[1]["error"]["request_id"] == headers["x-request-id"]
    assert sse(failed_text) == [
        {"text": "partial"},
        {"error": {"type": "service_error", "message": "the model server failed"}},
        "[DONE]",
    ]


def test_a_malformed_gateway_answer_is_a_bare_500_and_no_log_quotes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gateway answering 200 with a usage that is not a number: parsing it fails with a
    message quoting the value (here the prompt), which must reach neither caller nor log."""
    caplog.set_level(logging.DEBUG)

    async def echoing(request: web.Request) -> web.Response:
        prompt = (await request.json())["prompt"]
        return web.json_response(
            {"choices": [{"text": prompt}], "usage": {"prompt_tokens": prompt}}
        )

    app = web.Application()
    app.router.add_post("/v1/completions", echoing)
    status, _, body = run(generate(app, {"deployment_id": "md-1", "prompt": PROMPT_MARK}))
    assert status == 500 and body["error"]["message"] == "internal error"
    assert PROMPT_MARK not in json.dumps(body)
    assert PROMPT_MARK not in caplog.text
    assert "unexpected ValueError at " in caplog.text and "translate.py" in caplog.text
