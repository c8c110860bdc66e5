"""The front door retries a gateway that refuses the connection (a deployment just reported
Ready whose endpoint is not routed yet), never a request that reached it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from paitient_api.gateway_client import post_retrying_refusals


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session(on_refused: Any = None) -> aiohttp.ClientSession:
    trace = aiohttp.TraceConfig()
    if on_refused is not None:
        trace.on_request_exception.append(on_refused)
    return aiohttp.ClientSession(trace_configs=[trace])


def test_a_gateway_that_starts_listening_after_a_refusal_is_reached() -> None:
    port, hits = _free_port(), []

    async def answer(request: web.Request) -> web.Response:
        hits.append(await request.json())
        return web.json_response({"ok": True})

    async def main() -> int:
        runner: web.AppRunner | None = None

        async def refused(*_: Any) -> None:
            nonlocal runner
            if runner is None:  # the first refusal: the endpoint becomes routable now
                app = web.Application()
                app.router.add_post("/v1/completions", answer)
                runner = web.AppRunner(app)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()

        http = _session(refused)
        try:
            url = f"http://127.0.0.1:{port}/v1/completions"
            post = lambda: http.post(url, json={"prompt": "x"})  # noqa: E731
            async with await post_retrying_refusals(post) as response:
                return response.status
        finally:
            await http.close()
            if runner is not None:
                await runner.cleanup()

    assert asyncio.run(main()) == 200
    assert hits == [{"prompt": "x"}]  # sent once: only the refused attempt was repeated


def test_a_gateway_that_never_listens_is_given_up_on() -> None:
    async def main() -> None:
        http = _session()
        try:
            url = f"http://127.0.0.1:{_free_port()}/v1/completions"
            await post_retrying_refusals(lambda: http.post(url))
        finally:
            await http.close()

    with pytest.raises(aiohttp.ClientConnectorError):
        asyncio.run(main())
