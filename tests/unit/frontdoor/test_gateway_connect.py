"""The front door retries a gateway that refuses the connection (a deployment just reported
Ready whose endpoint is not routed yet) once after each of its delays, and never a request that
reached it, nor a TLS failure."""

from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from paitient_api.gateway_client import CONNECT_RETRY_DELAYS, post_retrying_refusals
from paitient_common.tls import client_context
from paitient_operator.certificates import x509


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


def test_a_gateway_that_never_listens_is_tried_once_per_delay_then_given_up_on() -> None:
    attempts: list[type[BaseException]] = []

    async def refused(*args: Any) -> None:
        attempts.append(type(args[2].exception))

    async def main() -> None:
        http = _session(refused)
        try:
            url = f"http://127.0.0.1:{_free_port()}/v1/completions"
            await post_retrying_refusals(lambda: http.post(url))
        finally:
            await http.close()

    with pytest.raises(aiohttp.ClientConnectorError):
        asyncio.run(main())
    # The first try and one after each delay (2.5 s in all): then the refusal is the answer.
    assert len(attempts) == len(CONNECT_RETRY_DELAYS) + 1 == 6
    assert all(issubclass(a, aiohttp.ClientConnectorError) for a in attempts)


def test_a_request_the_gateway_received_is_never_sent_again() -> None:
    """The gateway read the request and dropped the connection without an answer: it may have
    run, so the error is the caller's at once."""
    received: list[bytes] = []

    async def main() -> None:
        async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.append(await reader.readuntil(b"\r\n\r\n"))
            writer.close()

        server = await asyncio.start_server(drop, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        http = _session()
        try:
            url = f"http://127.0.0.1:{port}/v1/completions"
            await post_retrying_refusals(lambda: http.post(url, json={"prompt": "x"}))
        finally:
            await http.close()
            server.close()
            await server.wait_closed()

    with pytest.raises(aiohttp.ServerDisconnectedError):
        asyncio.run(main())
    assert len(received) == 1


def test_a_gateway_whose_certificate_is_not_trusted_is_not_tried_again(tmp_path: Path) -> None:
    stranger = x509.new_authority("nobody's CA", timedelta(days=1), datetime.now(UTC))
    leaf = x509.issue(stranger, ["127.0.0.1"], timedelta(days=1), datetime.now(UTC))
    (tmp_path / "tls.crt").write_text(leaf.cert_pem)
    (tmp_path / "tls.key").write_text(leaf.key_pem)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    attempts: list[BaseException] = []

    async def failed(*args: Any) -> None:
        attempts.append(args[2].exception)

    async def main() -> None:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
        port = server.sockets[0].getsockname()[1]
        http = _session(failed)
        try:
            url = f"https://127.0.0.1:{port}/v1/completions"
            trusting_another = client_context(
                x509.new_authority("ours", timedelta(days=1), datetime.now(UTC)).cert_pem
            )
            await post_retrying_refusals(lambda: http.post(url, ssl=trusting_another))
        finally:
            await http.close()
            server.close()
            await server.wait_closed()

    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        asyncio.run(main())
    assert len(attempts) == 1
