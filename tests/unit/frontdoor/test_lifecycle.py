"""Stopping the front door: not ready at once, requests in the delay answered with
``Connection: close``, no new connections afterwards, a stream in progress finished (or cut at
the shutdown timeout). A real aiohttp server on 127.0.0.1 and a real client."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from paitient_api.app import readyz
from paitient_api.lifecycle import Lifecycle, serve
from paitient_localcluster.host.processes import free_port

CHUNKS = 5


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for i in range(CHUNKS):
        await response.write(f"chunk {i}\n".encode())
        await asyncio.sleep(float(request.query.get("gap", "0.2")))
    await response.write_eof()
    return response


async def hello(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def app() -> web.Application:
    application = web.Application()
    application["door"] = SimpleNamespace(
        callers=SimpleNamespace(unready_reason=lambda: None), store_health=None
    )
    Lifecycle().install(application)
    application.router.add_get("/stream", stream)
    application.router.add_get("/hello", hello)
    application.router.add_get("/readyz", readyz)
    return application


async def _first_line(response: aiohttp.ClientResponse) -> bytes:
    return await response.content.readline()


async def _started(
    port: int, delay: float, timeout: float
) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(app(), "127.0.0.1", port, ssl_context=None, shutdown_delay=delay,
              shutdown_timeout=timeout, stop=stop)
    )  # fmt: skip
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    return server, stop


def test_a_stream_in_progress_finishes_and_the_replica_leaves_the_service_first() -> None:
    asyncio.run(_stream_finishes())


async def _stream_finishes() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server, stop = await _started(port, delay=0.6, timeout=10)
    session = aiohttp.ClientSession()
    async with session.get(f"{url}/readyz") as ready:
        assert ready.status == 200
    async with session.get(f"{url}/stream") as streaming:
        assert await _first_line(streaming) == b"chunk 0\n"
        stop.set()  # SIGTERM
        await asyncio.sleep(0.1)
        # In the delay: not ready, still answering, and telling clients to go elsewhere.
        async with aiohttp.ClientSession() as other:
            async with other.get(f"{url}/readyz") as ready:
                assert ready.status == 503
                assert (await ready.json())["status"] == "shutting down"
            async with other.get(f"{url}/hello") as answered:
                assert answered.status == 200
                assert answered.headers["Connection"] == "close"
        await asyncio.sleep(0.7)  # past the delay: the listener is closed
        with pytest.raises(aiohttp.ClientConnectorError):
            async with aiohttp.ClientSession() as late:
                await late.get(f"{url}/hello")
        rest = await streaming.content.read()  # the stream runs to its end
    await session.close()
    assert rest.decode().splitlines() == [f"chunk {i}" for i in range(1, CHUNKS)]
    await asyncio.wait_for(server, timeout=5)


def test_what_outlives_the_shutdown_timeout_is_cut() -> None:
    asyncio.run(_stream_cut())


async def _stream_cut() -> None:
    port = free_port()
    server, stop = await _started(port, delay=0, timeout=0.3)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/stream?gap=2") as streaming,
    ):
        assert await _first_line(streaming) == b"chunk 0\n"
        stop.set()
        with pytest.raises(aiohttp.ClientPayloadError):
            await streaming.content.read()
    await asyncio.wait_for(server, timeout=5)
