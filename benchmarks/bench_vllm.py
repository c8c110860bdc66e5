"""Real vLLM (CPU build) with the tiny model: start time, memory, tokens/s direct vs via the gateway.

vLLM runs with the operator's own arguments and environment for a CPU ModelDeployment
(``tests/vllm/upstreams.py``), a gateway in front of it as in a pod. Each figure is measured
direct to vLLM and through the gateway, alternately, at concurrency 1 and 4, so the gateway's
cost is read next to a real model's. Bounded: ``--requests`` per worker, ``--max-tokens`` each.

    python benchmarks/bench_vllm.py            # the vllm-cpu image (make images), as tests/vllm
    PAITIENT_VLLM_PYTHON=… PAITIENT_TINY_MODEL=… python benchmarks/bench_vllm.py   # a local vLLM
    python benchmarks/bench_vllm.py --smoke    # the stand-in in vLLM's place: seconds

The last line is a JSON summary. The smoke run (a test does it) runs every step of the benchmark
against the vLLM stand-in; real vLLM's start is what tests/vllm exercises.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.summary import print_summary  # noqa: E402
from tests.images.podman_store import session_store  # noqa: E402
from tests.standins.processes import wait_http  # noqa: E402
from tests.vllm.in_image import ImageRunner, image_missing  # noqa: E402
from tests.vllm.upstreams import (  # noqa: E402
    SERVED_MODEL,
    VLLM_START_TIMEOUT,
    Upstream,
    local_vllm_missing,
    start_gateway_for,
)


def descendants(pid: int) -> set[int]:
    """``pid`` and every process under it (vLLM's API server, engine core and worker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


def tree_memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB of ``pid`` and its descendants."""
    rss = pss = 0
    for process in descendants(pid):
        entry = Path("/proc") / str(process)
        try:
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


def vllm_upstream(stack: contextlib.ExitStack, logs: Path) -> Upstream:
    """Real vLLM as tests/vllm runs it: a local vLLM (``PAITIENT_VLLM_PYTHON`` and
    ``PAITIENT_TINY_MODEL``), else the built ``vllm-cpu`` image under a podman store of this run's
    own; exits with the reason when neither is here."""
    if local_vllm_missing() is None:
        return Upstream("vllm", logs)
    if (missing := image_missing()) is not None:
        sys.exit(f"{local_vllm_missing()}; or {missing}")
    podman = stack.enter_context(session_store())
    return Upstream("vllm", logs, ImageRunner(podman, logs / "image"))


def server_pid(upstream: Upstream) -> int:
    """The model server's own process: the local one, or the container's first process."""
    if upstream.container is not None:
        done = upstream.container.podman.run(
            "inspect", "--format", "{{.State.Pid}}", upstream.container.name
        )
        return int(done.stdout.strip())
    assert upstream.proc is not None
    return upstream.proc.popen.pid


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=8, help="requests per worker per run")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2, help="alternations of direct and gateway")
    p.add_argument(
        "--smoke", action="store_true",
        help="the vLLM stand-in in vLLM's place, 2 requests of 8 tokens (a test runs it)",
    )  # fmt: skip
    args = p.parse_args()
    if args.smoke:
        args.requests, args.max_tokens, args.rounds = 2, 8, 1
    logs = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    with contextlib.ExitStack() as stack:
        upstream = Upstream("standin", logs) if args.smoke else vllm_upstream(stack, logs)
        gateway = start_gateway_for(upstream, logs)
        try:
            started = time.monotonic()
            upstream.start()
            upstream.wait_healthy(VLLM_START_TIMEOUT)
            start_s = time.monotonic() - started
            wait_http(f"{gateway.url}/healthz/ready", 60, gateway.proc)
            idle = tree_memory(server_pid(upstream))
            print(f"{upstream.kind} start (process to /health 200): {start_s:.1f} s")
            print(f"{upstream.kind} memory at rest: RSS {idle[0]:.0f} MiB, PSS {idle[1]:.0f} MiB")
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
            busy = tree_memory(server_pid(upstream))
        finally:
            upstream.stop()
            gateway.proc.stop()
    print(f"{upstream.kind} memory after the load: RSS {busy[0]:.0f} MiB, PSS {busy[1]:.0f} MiB")
    print(f"\n{args.max_tokens} tokens per request, streamed; median of {args.rounds} runs")
    print("| path | concurrency | tokens/s | TTFT p50 (ms) |")
    print("|---|---|---|---|")
    figures = {}
    for (name, concurrency), runs in sorted(results.items(), key=lambda kv: kv[0][1]):
        tps = statistics.median(r[0] for r in runs)
        ttft = statistics.median(r[1] for r in runs)
        print(f"| {name} | {concurrency} | {tps:.0f} | {ttft:.1f} |")
        figures[f"{name} c{concurrency}"] = {"tokens_per_s": round(tps), "ttft_ms": round(ttft, 1)}
    print_summary(
        __file__, args.smoke, server=upstream.kind, start_s=round(start_s, 1),
        rss_mib={"idle": round(idle[0]), "busy": round(busy[0])}, paths=figures,
    )  # fmt: skip


if __name__ == "__main__":
    main()
