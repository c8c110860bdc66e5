"""Real vLLM (CPU build) with the tiny model: start time, memory, tokens/s direct vs via the gateway.

vLLM runs with the operator's own arguments and environment for a CPU ModelDeployment
(``tests/vllm/upstreams.py``), a gateway in front of it as in a pod. Each figure is measured
direct to vLLM and through the gateway, alternately, at concurrency 1 and 4, so the gateway's
cost is read next to a real model's. Bounded: ``--requests`` per worker, ``--max-tokens`` each.

    PAITIENT_VLLM_PYTHON=… PAITIENT_TINY_MODEL=… python benchmarks/bench_vllm.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.standins.processes import wait_http  # noqa: E402
from tests.vllm.upstreams import (  # noqa: E402
    SERVED_MODEL,
    VLLM_START_TIMEOUT,
    Upstream,
    start_gateway_for,
    vllm_available,
)


def tree_memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB of ``pid``'s session: vLLM's API server, engine core and worker."""
    rss = pss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != pid:
                continue
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except (OSError, ProcessLookupError):
            continue
    return rss / 1024, pss / 1024


async def one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[int, float | None]:
    """Completion tokens of one streamed request and its time to first token."""
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with session.post(url, json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        async for line in response.content:
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and first is None:
                first = time.perf_counter() - started
            if not chunk.get("choices") and chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return tokens, first


async def load(
    url: str, headers: dict[str, str], concurrency: int, requests: int, max_tokens: int
) -> tuple[float, float]:
    """(completion tokens per second, median time to first token in ms) for one run."""
    body = {
        "model": SERVED_MODEL,
        "prompt": "Summarise the visit notes for the clinician in plain words",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    firsts: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> int:
        total = 0
        for _ in range(requests):
            tokens, first = await one(session, url, headers, body)
            total += tokens
            if first is not None:
                firsts.append(first)
        return total

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        totals = await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return sum(totals) / wall, statistics.median(firsts) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=8, help="requests per worker per run")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2, help="alternations of direct and gateway")
    args = p.parse_args()
    if (reason := vllm_available()) is not None:
        sys.exit(reason)
    logs = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    upstream = Upstream("vllm", logs)
    gateway = start_gateway_for(upstream, logs)
    try:
        started = time.monotonic()
        upstream.start()
        assert upstream.proc is not None
        wait_http(f"{upstream.url}/health", VLLM_START_TIMEOUT, upstream.proc)
        start_s = time.monotonic() - started
        wait_http(f"{gateway.url}/healthz/ready", 60, gateway.proc)
        idle = tree_memory(upstream.proc.popen.pid)
        print(f"vLLM start (process to /health 200): {start_s:.1f} s")
        print(f"vLLM memory at rest: RSS {idle[0]:.0f} MiB, PSS {idle[1]:.0f} MiB")
        targets = {
            "direct": (f"{upstream.url}/v1/completions", {}),
            "gateway": (f"{gateway.url}/v1/completions", gateway.caller.headers()),
        }
        asyncio.run(load(*targets["direct"], 1, 2, 16))  # warm both paths
        asyncio.run(load(*targets["gateway"], 1, 2, 16))
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for concurrency in (1, 4):
                for name, (url, headers) in targets.items():
                    run = asyncio.run(
                        load(url, headers, concurrency, args.requests, args.max_tokens)
                    )
                    results.setdefault((name, concurrency), []).append(run)
        busy = tree_memory(upstream.proc.popen.pid)
        print(f"vLLM memory after the load: RSS {busy[0]:.0f} MiB, PSS {busy[1]:.0f} MiB")
        print(f"\n{args.max_tokens} tokens per request, streamed; median of {args.rounds} runs")
        print("| path | concurrency | tokens/s | TTFT p50 (ms) |")
        print("|---|---|---|---|")
        for (name, concurrency), runs in sorted(results.items(), key=lambda kv: kv[0][1]):
            tps = statistics.median(r[0] for r in runs)
            ttft = statistics.median(r[1] for r in runs)
            print(f"| {name} | {concurrency} | {tps:.0f} | {ttft:.1f} |")
    finally:
        upstream.stop()
        gateway.proc.stop()


if __name__ == "__main__":
    main()
