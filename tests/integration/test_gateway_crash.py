"""Metering survives SIGKILL under load: nothing a client received is lost, nothing counts twice.

8 clients send requests (JSON and streams, each with its own ``x-request-id``); once 40 answers
have come back the gateway is killed with SIGKILL while requests are in flight, the clients run
on until each has found it gone, and the gateway is restarted on the same ledger, whose replay is
compared with what the clients received. (How many requests a run gets through is a figure of
``benchmarks/bench_reactions.py``, not something this test depends on.)
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.standins.client import run, sync_call
from tests.standins.load import Load, ledger_records
from tests.standins.processes import (
    configure_standin,
    start_gateway,
    start_standin,
    write_keys_file,
)

KILL_AFTER = 40  # answers received before the kill


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
        load = Load(f"{gateway.url}/v1/completions", callers["acme"].headers())

        async def kill_under_load() -> int:
            assert gateway is not None
            await load.until(lambda: len(load.received) >= KILL_AFTER)
            in_flight = load.in_flight()
            await asyncio.to_thread(gateway.kill)
            before = dict(load.failures)
            # The load goes on until every client has found the gateway gone.
            await load.until(
                lambda: all(load.failures[n] > before.get(n, 0) for n in range(load.clients))
            )
            return in_flight

        in_flight_at_kill = run(asyncio.wait_for(load.run(kill_under_load()), timeout=120))
        assert gateway.popen.returncode == -9  # it really was SIGKILL
        assert in_flight_at_kill > 0  # killed under load, not between requests

        restarted = start_gateway(tmp_path, tmp_path / "keys.json", ledger, standin.url)
        records = ledger_records(ledger)
        ids = [str(r["request_id"]) for r in records]
        assert len(ids) == len(set(ids)), "a request was recorded twice"
        by_id = {str(r["request_id"]): r for r in records}
        # Every response a client received is in the ledger with the usage it showed.
        for rid, total in load.received.items():
            r = by_id[rid]
            assert int(r["prompt_tokens"]) + int(r["completion_tokens"]) == total, rid
        # Anything else was a request in flight at the kill: written, then its answer lost.
        extra = set(by_id) - set(load.received)
        assert extra <= load.started
        assert len(extra) <= load.clients
        # The restarted gateway replayed exactly the ledger: its requests, and its tokens of
        # each type (the counts its next UsageReport carries).
        text = sync_call("GET", f"{restarted.url}/metrics").body.decode()
        replayed = {
            kind: float(value)
            for kind, value in re.findall(
                r'paitient_gateway_ledger_tokens\{gen_ai_token_type="(\w+)"\} (\S+)', text
            )
        }
        requests = re.search(r"^paitient_gateway_ledger_requests (\S+)$", text, re.M)
        assert requests is not None and float(requests.group(1)) == len(records)
        assert replayed == {
            "input": sum(int(r["prompt_tokens"]) for r in records),
            "output": sum(int(r["completion_tokens"]) for r in records),
        }
    finally:
        for proc in (restarted, gateway):
            if proc is not None:
                proc.stop()
        standin.stop()
