"""The frame every front-door request passes (``paitient_api.middleware``): request ids, the one
error shape, the audit line, authentication, Idempotency-Key replay, and unexpected errors
logged without the request's content. The real application, with test routes added where a
handler must fail on purpose."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from aiohttp import web

from paitient_common.errors import (
    AUTHENTICATION_MESSAGE,
    SUSPENDED_MESSAGE,
    RateLimitError,
)
from tests.unit.frontdoor.support import Keys, call, front_door

PROMPT_MARK = "PATIENT-MRN-5521-PROMPT"
REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


calls: list[str] = []


async def _echo(request: web.Request) -> web.Response:
    calls.append(request.headers.get("Idempotency-Key", ""))
    return web.json_response({"n": len(calls)}, status=201)


async def _quoting_failure(request: web.Request) -> web.Response:
    body = await request.json()
    raise ValueError(f"could not handle {body['prompt']!r}")  # a message quoting the request


async def _limited(_: web.Request) -> web.Response:
    raise RateLimitError("slow down", retry_after=2.2)


async def _server_failure(request: web.Request) -> web.Response:
    calls.append(request.headers.get("Idempotency-Key", ""))
    raise ValueError("boom")


TEST_ROUTES = [
    web.post("/v1/test/echo", _echo),
    web.post("/v1/test/quoting-failure", _quoting_failure),
    web.get("/v1/test/limited", _limited),
    web.post("/v1/test/server-failure", _server_failure),
]


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


def test_an_unexpected_error_is_a_bare_500_and_its_log_holds_no_request_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> tuple[int, dict[str, str], object]:
        async with front_door(extra_routes=TEST_ROUTES) as (url, keys):
            return await call(
                "POST", f"{url}/v1/test/quoting-failure", {"prompt": PROMPT_MARK}, keys.headers()
            )

    status, headers, body = run(scenario())  # type: ignore[misc]
    assert status == 500
    assert body == {
        "error": {
            "type": "service_error",
            "message": "internal error",
            "request_id": headers["x-request-id"],
        }
    }
    assert PROMPT_MARK not in caplog.text
    unexpected = [
        r for r in caplog.records if r.name == "paitient.api" and "unexpected" in r.getMessage()
    ]
    assert len(unexpected) == 1
    line = unexpected[0].getMessage()
    assert "ValueError at " in line and "test_middleware.py" in line  # type and place only
    assert "POST /v1/test/quoting-failure" in line
    assert unexpected[0].exc_info is None  # no traceback attached for a handler to print


def test_every_answer_has_a_request_id_and_errors_carry_it() -> None:
    async def scenario() -> list[tuple[int, dict[str, str], object]]:
        async with front_door(extra_routes=TEST_ROUTES) as (url, keys):
            return [
                await call("GET", f"{url}/v1/openapi.json"),
                await call("GET", f"{url}/v1/no-such-route", headers=keys.headers()),
                await call("DELETE", f"{url}/v1/subscription", headers=keys.headers()),
                await call("GET", f"{url}/v1/test/limited", headers=keys.headers()),
            ]

    (ok, missing, wrong_method, limited) = run(scenario())  # type: ignore[misc]
    assert ok[0] == 200 and REQUEST_ID.fullmatch(ok[1]["x-request-id"])
    assert missing[0] == 404 and missing[2]["error"] == {
        "type": "not_found_error",
        "message": "no such route",
        "request_id": missing[1]["x-request-id"],
    }
    assert wrong_method[0] == 405 and wrong_method[1]["Allow"] == "GET,HEAD"
    assert wrong_method[2]["error"]["type"] == "validation_error"
    assert limited[0] == 429 and limited[1]["Retry-After"] == "3"  # rounded up
    assert limited[2]["error"]["request_id"] == limited[1]["x-request-id"]
    assert len({a[1]["x-request-id"] for a in (ok, missing, wrong_method, limited)}) == 4


@pytest.mark.parametrize(
    ("which", "client_id"),
    [
        (None, "acme-clinic"),  # no key
        ("acme", None),  # no client ID
        ("acme", "frozen-clinic"),  # another tenant's client ID
        ("expired", "acme-clinic"),
        ("revoked", "acme-clinic"),
        ("forged", "acme-clinic"),  # right key id, wrong secret
        ("garbage", "acme-clinic"),
    ],
)
def test_every_authentication_failure_gets_the_same_answer(
    which: str | None, client_id: str | None
) -> None:
    """Whatever was wrong, the caller sees one status, one body and one header: it never
    learns which half of the pair failed, or that a key exists but expired or was revoked."""

    async def scenario() -> tuple[int, dict[str, str], object]:
        async with front_door() as (url, keys):
            headers = _credentials(keys, which, client_id)
            return await call("GET", f"{url}/v1/subscription", headers=headers)

    status, headers, body = run(scenario())  # type: ignore[misc]
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="paitient"'
    assert body == {
        "error": {
            "type": "authentication_error",
            "message": AUTHENTICATION_MESSAGE,
            "request_id": headers["x-request-id"],
        }
    }


def _credentials(keys: Keys, which: str | None, client_id: str | None) -> dict[str, str]:
    headers = {"X-Client-ID": client_id} if client_id is not None else {}
    if which == "forged":
        key = keys.plaintext["acme"]
        headers["Authorization"] = f"Bearer {key[:-4]}AAAA"
    elif which == "garbage":
        headers["Authorization"] = "Bearer not-a-key"
    elif which is not None:
        headers["Authorization"] = f"Bearer {keys.plaintext[which]}"
    return headers


def test_a_suspended_tenant_is_403_and_paths_outside_v1_need_no_key() -> None:
    async def scenario() -> list[tuple[int, dict[str, str], object]]:
        async with front_door() as (url, keys):
            return [
                await call(
                    "GET", f"{url}/v1/subscription", headers=keys.headers("frozen", "frozen-clinic")
                ),
                await call("GET", f"{url}/healthz"),
                await call("GET", f"{url}/v1/openapi.json"),
            ]

    suspended, health, openapi = run(scenario())  # type: ignore[misc]
    assert suspended[0] == 403
    assert suspended[2]["error"]["message"] == SUSPENDED_MESSAGE
    assert health[0] == 200 and openapi[0] == 200


def test_a_retried_write_with_the_same_idempotency_key_is_answered_from_the_first() -> None:
    async def scenario() -> list[tuple[int, dict[str, str], object]]:
        async with front_door(extra_routes=TEST_ROUTES) as (url, keys):
            echo = f"{url}/v1/test/echo"
            first = {**keys.headers(), "Idempotency-Key": "k-1"}
            return [
                await call("POST", echo, {}, first),
                await call("POST", echo, {}, first),
                await call("POST", echo, {}, {**keys.headers(), "Idempotency-Key": "k-2"}),
                await call("POST", echo, {}, keys.headers()),
                await call("POST", echo, {}, {**keys.headers(), "Idempotency-Key": "x" * 129}),
            ]

    first, replayed, other_key, no_key, too_long = run(scenario())  # type: ignore[misc]
    assert (first[0], first[2]) == (201, {"n": 1})
    assert (replayed[0], replayed[2]) == (201, {"n": 1})  # the first answer, handler not run
    assert other_key[2] == {"n": 2} and no_key[2] == {"n": 3}
    assert calls == ["k-1", "k-2", ""]
    assert too_long[0] == 400 and "128" in too_long[2]["error"]["message"]


def test_concurrent_retries_wait_for_the_first_and_a_server_error_is_not_replayed() -> None:
    async def scenario() -> tuple[list[tuple[int, dict[str, str], object]], list[int]]:
        async with front_door(extra_routes=TEST_ROUTES) as (url, keys):
            same = {**keys.headers(), "Idempotency-Key": "together"}
            together = await asyncio.gather(
                *(call("POST", f"{url}/v1/test/echo", {}, same) for _ in range(5))
            )
            failing = {**keys.headers(), "Idempotency-Key": "fails"}
            statuses = [
                (await call("POST", f"{url}/v1/test/server-failure", {}, failing))[0]
                for _ in range(2)
            ]
            return list(together), statuses

    together, statuses = run(scenario())  # type: ignore[misc]
    assert {json.dumps(a[2]) for a in together} == {json.dumps({"n": 1})}
    # A 5xx is not an answer to keep: the retry runs the handler again.
    assert statuses == [500, 500]
    assert calls == ["together", "fails", "fails"]


def test_the_audit_line_has_the_fixed_fields_and_no_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="paitient.api.audit")

    async def scenario() -> dict[str, str]:
        async with front_door(extra_routes=TEST_ROUTES) as (url, keys):
            await call("POST", f"{url}/v1/test/echo", {"prompt": PROMPT_MARK}, keys.headers())
            return keys.plaintext

    plaintext = run(scenario())  # type: ignore[misc]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "paitient.api.audit"]
    assert len(lines) == 1
    line = lines[0]
    assert set(line) == {
        "time", "request_id", "tenant", "client_id", "key_id", "route", "method", "status", "latency_ms",
    }  # fmt: skip
    assert (line["tenant"], line["client_id"], line["status"]) == ("acme", "acme-clinic", 201)
    assert line["route"] == "/v1/test/echo" and REQUEST_ID.fullmatch(line["request_id"])
    assert line["key_id"] == plaintext["acme"].split("_")[1]
    assert PROMPT_MARK not in caplog.text and plaintext["acme"] not in caplog.text
