"""The front door moves on to the next route when one refuses the connection (nothing was sent),
retries refusals once after each of its delays (a deployment just reported Ready whose endpoint
is not routed yet), and never sends a request twice once a gateway may have received it, nor
tries again after a TLS failure."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from paitient_api.gateway_client import CONNECT_RETRY_DELAYS, finished, post_first_reachable
from paitient_api.replicas.loads import LoadBoard
from paitient_api.routing import Route
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


def _post(http: aiohttp.ClientSession) -> Any:
    return lambda route: http.post(route.url + "/v1/completions", json={"prompt": "x"})


@asynccontextmanager
async def _gateway(hits: list[Any], port: int = 0) -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        hits.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def test_a_gateway_that_starts_listening_after_a_refusal_is_reached() -> None:
    port, hits = _free_port(), []

    async def main() -> int:
        started: list[Any] = []

        async def refused(*_: Any) -> None:
            if not started:  # the first refusal: the endpoint becomes routable now
                context = _gateway(hits, port)
                started.append(context)
                await context.__aenter__()

        http = _session(refused)
        try:
            route = Route(f"http://127.0.0.1:{port}")
            async with await post_first_reachable([route], _post(http)) as response:
                return response.status
        finally:
            await http.close()
            if started:
                await started[0].__aexit__(None, None, None)

    assert asyncio.run(main()) == 200
    assert hits == [{"prompt": "x"}]  # sent once: only the refused attempt was repeated


def test_a_replica_that_refuses_is_skipped_and_counted_on_the_one_that_answers() -> None:
    hits: list[Any] = []

    async def main() -> tuple[int, dict[str, int], dict[str, int]]:
        board = LoadBoard()
        async with _gateway(hits) as live:
            dead, alive = Route(f"http://127.0.0.1:{_free_port()}"), Route(live)
            http = _session()
            try:
                response = await post_first_reachable(
                    [dead, alive], _post(http), lambda route: board.start(route.url)
                )
                during = board.estimates([dead.url, alive.url])
                status = response.status
                finished(response)
                response.release()
                after = board.estimates([dead.url, alive.url])
            finally:
                await http.close()
        return status, during, after

    status, during, after = asyncio.run(main())
    assert status == 200 and hits == [{"prompt": "x"}]
    assert sorted(during.values()) == [0, 1]  # the refusing one's lease was given back at once
    assert set(after.values()) == {0}  # and the answering one's when the request ended


def test_a_request_a_gateway_may_have_received_is_never_sent_to_another() -> None:
    """The first gateway accepts the connection, reads the request and drops it unanswered: the
    request may have started there, so the second gateway never sees it."""
    hits: list[Any] = []

    async def main() -> None:
        received = asyncio.Event()

        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)
            received.set()
            writer.close()

        server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with _gateway(hits) as live:
            http = _session()
            try:
                routes = [Route(f"http://127.0.0.1:{port}"), Route(live)]
                await post_first_reachable(routes, _post(http))
            finally:
                await http.close()
                server.close()
                await server.wait_closed()
        assert received.is_set()

    with pytest.raises(aiohttp.ServerDisconnectedError):
        asyncio.run(main())
    assert hits == []


def test_gateways_that_never_listen_are_tried_once_per_delay_then_given_up_on() -> None:
    attempts: list[type[BaseException]] = []

    async def refused(*args: Any) -> None:
        attempts.append(type(args[2].exception))

    async def main() -> None:
        http = _session(refused)
        try:
            routes = [Route(f"http://127.0.0.1:{_free_port()}") for _ in range(2)]
            await post_first_reachable(routes, _post(http))
        finally:
            await http.close()

    with pytest.raises(aiohttp.ClientConnectorError):
        asyncio.run(main())
    # Each route at first and once after each delay (2.5 s in all): then the refusal is the answer.
    assert len(attempts) == 2 * (len(CONNECT_RETRY_DELAYS) + 1) == 12
    assert all(issubclass(a, aiohttp.ClientConnectorError) for a in attempts)


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
        trusting_another = client_context(
            x509.new_authority("ours", timedelta(days=1), datetime.now(UTC)).cert_pem
        )
        try:
            # A second route that would answer: a TLS failure is final, not a refusal.
            routes = [Route(f"https://127.0.0.1:{port}"), Route(f"http://127.0.0.1:{_free_port()}")]
            await post_first_reachable(
                routes,
                lambda route: http.post(route.url + "/v1/completions", ssl=trusting_another),
            )
        finally:
            await http.close()
            server.close()
            await server.wait_closed()

    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        asyncio.run(main())
    assert len(attempts) == 1
