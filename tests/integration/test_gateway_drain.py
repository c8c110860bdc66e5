"""A gateway told to stop (SIGTERM, as when its replica is scaled down) loses nothing: it stops
being ready at once, still serves what arrives while the Service lets go of it, lets every
request and stream in progress finish, bills exactly what each client received, writes the file
the model server's preStop hook waits for, and exits 0. And it reports the load the autoscaler
and the front doors read (``GET /healthz/load``: completions in flight, the model server's own
running and waiting counts, draining from SIGTERM on), and exports the same as gauges.

Real gateway and vLLM stand-in processes on 127.0.0.1 (no cluster).
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from paitient_common.gateway_load import LOAD_PATH, GatewayLoad
from tests.integration.waiting import wait_for
from tests.standins.client import run
from tests.standins.load import ledger_records
from tests.standins.processes import (
    configure_standin,
    start_gateway,
    start_standin,
    write_keys_file,
)

STREAMS = 4
TOKENS = 40  # at 20 tokens/s: each stream lasts about 2 s, longer than the drain's delay


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _gauges(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("paitient_gateway_")
    }


async def _stream(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], rid: str
) -> int:
    body = {"prompt": "a b c", "max_tokens": TOKENS, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    async with session.post(url, json=body, headers={**headers, "x-request-id": rid}) as response:
        assert response.status == 200, await response.text()
        raw = await response.read()
    events = [e[6:] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
    assert events[-1] == b"[DONE]", f"stream {rid} was cut off"
    usage: dict[str, Any] = json.loads(events[-2])["usage"]
    return int(usage["prompt_tokens"]) + int(usage["completion_tokens"])


def _load(url: str) -> GatewayLoad | None:
    with urllib.request.urlopen(f"{url}{LOAD_PATH}", timeout=5) as response:
        return GatewayLoad.from_json(json.loads(response.read()))


def _all_running(load: GatewayLoad | None) -> GatewayLoad | None:
    # ``running`` is the stand-in's own count, read by the gateway from its /metrics.
    return load if load is not None and load.in_flight == load.running == STREAMS else None


def _leaving(url: str) -> GatewayLoad | None:
    """The load report once readiness is off: read at once, while the gateway still listens."""
    return _load(url) if _status(f"{url}/healthz/ready") == 503 else None


def test_sigterm_drains_every_stream_bills_exactly_and_releases_the_model_server(
    tmp_path: Path,
) -> None:
    standin = start_standin(tmp_path)
    gateway = None
    try:
        configure_standin(standin, tokens_per_second=20)
        callers = write_keys_file(
            tmp_path / "keys.json",
            [{"name": "acme", "clientId": "acme-app", "namespace": "tenant-acme"}],
        )
        drained = tmp_path / "drained"
        ledger = tmp_path / "ledger"
        gateway = start_gateway(
            tmp_path, tmp_path / "keys.json", ledger, standin.url,
            env={"PAITIENT_SHUTDOWN_DELAY_SECONDS": "1", "PAITIENT_SHUTDOWN_TIMEOUT_SECONDS": "60",
                 "PAITIENT_DRAINED_FILE": str(drained)},
        )  # fmt: skip
        url, headers = gateway.url, callers["acme"].headers()
        idle = _gauges(url)
        assert idle["paitient_gateway_in_flight_completions"] == 0
        assert idle["paitient_gateway_model_requests_running"] == 0
        assert idle["paitient_gateway_model_requests_waiting"] == 0
        assert idle["paitient_gateway_draining"] == 0
        assert _load(url) == GatewayLoad(0, 0.0, 0.0, draining=False)

        async def scenario() -> tuple[dict[str, int], GatewayLoad, GatewayLoad, int]:
            async with aiohttp.ClientSession() as session:
                streams = {
                    f"s{n}": asyncio.ensure_future(
                        _stream(session, f"{url}/v1/completions", headers, f"s{n}")
                    )
                    for n in range(STREAMS)
                }
                busy = await asyncio.to_thread(
                    wait_for,
                    lambda: _all_running(_load(url)),
                    timeout=20,
                    what="every stream in flight, at the gateway and in the model server",
                )
                gateway.popen.send_signal(signal.SIGTERM)
                leaving = await asyncio.to_thread(
                    wait_for,
                    lambda: _leaving(url),
                    timeout=5,
                    interval=0.05,
                    what="readiness off after SIGTERM",
                )
                # Still accepting during the delay: a request that arrives is served whole.
                late = asyncio.ensure_future(
                    _stream(session, f"{url}/v1/completions", headers, "late")
                )
                received = {rid: await task for rid, task in {**streams, "late": late}.items()}
                return received, busy, leaving, await asyncio.to_thread(gateway.popen.wait, 60)

        received, busy, leaving, exit_code = run(scenario())
        assert busy.waiting == 0 and not busy.draining
        # The autoscaler counts a draining replica as gone; the streams still count in flight.
        assert leaving.draining and leaving.in_flight == STREAMS
        assert exit_code == 0, gateway.output()[-2000:]
        assert drained.read_text() == "drained\n"
        billed = {
            str(r["request_id"]): int(r["prompt_tokens"]) + int(r["completion_tokens"])
            for r in ledger_records(ledger)
        }
        assert billed == received  # every stream whole, each billed what its client received
    finally:
        if gateway is not None:
            gateway.stop()
        standin.stop()
