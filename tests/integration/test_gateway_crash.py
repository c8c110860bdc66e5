"""Metering survives SIGKILL under load: nothing a client received is lost, nothing counts twice.

8 clients send requests (JSON and streams, each with its own ``x-request-id``) for 2 s; the
gateway is killed with SIGKILL in the middle, restarted on the same ledger, and its replayed
ledger is compared with what the clients received.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path

import aiohttp

from tests.standins.client import run, sync_call
from tests.standins.processes import (
    configure_standin,
    start_gateway,
    start_standin,
    write_keys_file,
)

CLIENTS = 8
DURATION = 2.0
KILL_AT = 1.0


async def client(
    n: int, url: str, headers: dict[str, str], received: dict[str, int], started: set[str]
) -> None:
    end = time.monotonic() + DURATION
    i = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        while time.monotonic() < end:
            i += 1
            rid = f"c{n}-{i}"
            stream = i % 2 == 0
            body = {"prompt": f"w{n} w{i} x", "max_tokens": 1 + i % 7, "stream": stream}
            if stream:
                body["stream_options"] = {"include_usage": True}
            started.add(rid)
            try:
                async with s.post(url, json=body, headers={**headers, "x-request-id": rid}) as r:
                    raw = await r.read()
                    if r.status != 200:
                        continue
                    if stream:
                        events = [e[6:] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
                        if not events or events[-1] != b"[DONE]":
                            continue  # cut off: the client never saw its usage
                        usage = json.loads(events[-2])["usage"]
                    else:
                        usage = json.loads(raw)["usage"]
                    received[rid] = usage["prompt_tokens"] + usage["completion_tokens"]
            except (aiohttp.ClientError, TimeoutError, ValueError):
                await asyncio.sleep(0.05)  # the gateway is down: try again shortly


def ledger_records(directory: Path) -> list[dict[str, object]]:
    lines = b"".join(p.read_bytes() for p in sorted(directory.glob("usage-*.jsonl")))
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


def test_sigkill_under_load_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    standin = start_standin(tmp_path)
    gateway = restarted = None
    try:
        configure_standin(standin, tokens_per_second=400)
        callers = write_keys_file(
            tmp_path / "keys.json",
            [{"name": "acme", "clientId": "acme-app", "namespace": "tenant-acme"}],
        )
        ledger = tmp_path / "ledger"
        gateway = start_gateway(tmp_path, tmp_path / "keys.json", ledger, standin.url)
        url = f"{gateway.url}/v1/completions"
        received: dict[str, int] = {}
        started: set[str] = set()
        killer = threading.Timer(KILL_AT, gateway.kill)
        killer.start()

        async def load() -> None:
            headers = callers["acme"].headers()
            await asyncio.gather(
                *(client(n, url, headers, received, started) for n in range(CLIENTS))
            )

        try:
            run(load())
        finally:
            killer.cancel()
        assert gateway.popen.returncode == -9  # it really was SIGKILL

        restarted = start_gateway(tmp_path, tmp_path / "keys.json", ledger, standin.url)
        records = ledger_records(ledger)
        ids = [str(r["request_id"]) for r in records]
        assert len(ids) == len(set(ids)), "a request was recorded twice"
        by_id = {str(r["request_id"]): r for r in records}
        # Every response a client received is in the ledger with the usage it showed.
        for rid, total in received.items():
            r = by_id[rid]
            assert int(r["prompt_tokens"]) + int(r["completion_tokens"]) == total, rid
        # Anything else was a request in flight at the kill: written, then its answer lost.
        extra = set(by_id) - set(received)
        assert extra <= started
        assert len(extra) <= CLIENTS
        text = sync_call("GET", f"{restarted.url}/metrics").body.decode()
        replayed = sum(
            float(v) for v in re.findall(r"paitient_gateway_ledger_tokens\{[^}]*\} (\S+)", text)
        )
        in_ledger = sum(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in records)
        assert replayed == in_ledger
        assert in_ledger - sum(received.values()) == sum(
            int(by_id[i]["prompt_tokens"]) + int(by_id[i]["completion_tokens"]) for i in extra
        )
        assert len(received) > 50  # the load really ran on both sides of the kill
        print(
            f"\nrequests received={len(received)} started={len(started)} "
            f"ledger={len(records)} written-but-unanswered={len(extra)}"
        )
    finally:
        for proc in (restarted, gateway):
            if proc is not None:
                proc.stop()
        standin.stop()
