"""Node loss (docs/gateway.md, "What a failure can lose"): a gateway killed without SIGTERM, its
ledger gone with the node, loses from its UsageReport only the usage since its last report write;
with the shared store, nothing a client received: every response was settled there first.

8 clients send requests through a real gateway that writes its UsageReport to the real API
server every 5 s (the default). Once the report has been written twice under load, and a random
number of answers later (up to about one interval's worth), the gateway is SIGKILLed and its
ledger directory deleted, as a node's loss takes the pod's memory-backed ``emptyDir``. The
UsageReport left behind is compared with what the clients received: it holds everything they
received before the last written report's counters were read, which the API server's audit log
places one report interval after the write before it ended; nothing a client was not sent,
apart from requests in flight; and the audit log shows the writes on their interval. With a real
redis-server as the shared store, the tenant's usage there is everything the clients received
(plus at most the requests in flight), although the ledger is gone.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from paitient_common.kubeapi import Kube
from paitient_common.resources.install import install_crds
from paitient_localcluster.controlplane import audit
from tests.prerequisites import local_audit_log
from tests.standins.client import run
from tests.standins.load import Load
from tests.standins.processes import (
    configure_standin,
    start_gateway,
    start_standin,
    write_keys_file,
)
from tests.storeserver import RedisServer, stored_usage

REPORT_INTERVAL = 5.0  # the gateway's default (PAITIENT_USAGE_REPORT_INTERVAL), left as it is
MAX_REQUEST_TOKENS = 3 + 7  # Load's requests: a 3-word prompt, max_tokens up to 7
POD = "node-loss-gateway-0"


@pytest.mark.parametrize("shared_store", [False, True], ids=["no-store", "shared-store"])
def test_node_loss_loses_from_the_record_only_the_usage_since_the_last_report_write(
    shared_store: bool,
    kube: Kube,
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    store: RedisServer | None = request.getfixturevalue("redis_server") if shared_store else None
    install_crds(kube)
    audit_log = local_audit_log(kubeconfig)
    offset = audit.log_size(audit_log)
    standin = start_standin(tmp_path)
    configure_standin(standin, tokens_per_second=400)
    tenant = {"name": "acme", "clientId": "acme-app", "namespace": namespace}
    callers = write_keys_file(tmp_path / "keys.json", [tenant])
    ledger = tmp_path / "ledger"
    gateway = start_gateway(
        tmp_path, tmp_path / "keys.json", ledger, standin.url, kubeconfig=kubeconfig,
        env={"PAITIENT_MODELDEPLOYMENT_NAMESPACE": namespace, "PAITIENT_POD_NAME": POD,
             **(store.env() if store else {})},
    )  # fmt: skip
    load = Load(f"{gateway.url}/v1/completions", callers["acme"].headers())

    def report() -> dict[str, Any] | None:
        return kube.get("paitient.ai/v1alpha1", "UsageReport", POD, namespace=namespace)

    async def lose_the_node() -> tuple[float, int]:
        seen: list[Any] = []
        while len(seen) < 2:  # two writes under load: the report is on its 5 s rhythm
            spec = ((await asyncio.to_thread(report)) or {}).get("spec")
            if spec and spec.get("entries") and (not seen or spec != seen[-1]):
                seen.append(spec)
            await asyncio.sleep(0.2)
        answered = len(load.received)  # about two intervals' worth: kill within the next one
        extra = random.randint(1, max(1, answered // 2))
        await load.until(lambda: len(load.received) >= answered + extra)
        in_flight, killed_at = load.in_flight(), time.time()
        await asyncio.to_thread(gateway.kill)  # no SIGTERM, so no last report on the way out
        shutil.rmtree(ledger)  # the emptyDir goes with the node
        return killed_at, in_flight

    try:
        killed_at, in_flight = run(asyncio.wait_for(load.run(lose_the_node()), timeout=120))
    finally:
        gateway.stop()
        standin.stop()
    assert gateway.popen.returncode == -9 and not ledger.exists()

    left = report()
    assert left is not None
    entries = left["spec"]["entries"]
    assert {e["tenant"] for e in entries} == {"acme"}
    reported = sum(e["promptTokens"] + e["completionTokens"] for e in entries)
    reported_requests = sum(e["requests"] for e in entries)

    mine = [
        e
        for e in audit.read_events(audit_log, offset)
        if (e.resource, e.namespace, e.name) == ("usagereports", namespace, POD)
    ]
    writes = [e for e in mine if e.verb in ("create", "patch") and e.code < 300]
    reads = [e.received for e in mine if e.verb == "get" and e.received is not None]
    assert len(writes) >= 2, writes
    # On its interval: each write's read of the object came one interval after the write before
    # it ended, plus what the machine took; twice the interval would be a report that skipped
    # a beat (or another interval than the documented one).
    assert all(w.received and w.completed for w in writes)
    cycles = [
        max(r for r in reads if r <= b.received) - a.completed
        for a, b in itertools.pairwise(writes)
    ]
    assert all(REPORT_INTERVAL <= c.total_seconds() < 2 * REPORT_INTERVAL for c in cycles), cycles
    last, before = writes[-1], writes[-2]
    assert last.completed is not None and before.completed is not None
    assert last.completed.timestamp() <= killed_at  # nothing wrote after the kill
    # The last written report read its counters one interval after the write before it ended
    # (or later): every answer received before then is in it.
    counted_by = before.completed.timestamp() + REPORT_INTERVAL
    must_be_there = sum(t for rid, t in load.received.items() if load.received_at[rid] < counted_by)
    received = sum(load.received.values())
    print(
        f"\nreceived {received} tokens in {len(load.received)} answers; report {reported} tokens "
        f"in {reported_requests} requests; lost {received - reported} tokens, received in the "
        f"last {killed_at - counted_by:.2f} s before the kill at most "
        f"(last write {_seconds(last.completed, killed_at):.2f} s before it); report cycles "
        f"{[round(c.total_seconds(), 2) for c in cycles]} s"
    )
    assert must_be_there <= reported, "usage received before the last report's read is missing"
    # Nothing counted that no client was sent, apart from requests cut off by the kill.
    assert reported_requests <= len(load.received) + in_flight
    assert reported <= received + in_flight * MAX_REQUEST_TOKENS
    if store is not None:
        # Settled in the store before each client got its usage: nothing received is lost.
        in_store = stored_usage(store, "acme")
        print(f"in the store: {in_store} tokens")
        assert received <= in_store <= received + in_flight * MAX_REQUEST_TOKENS


def _seconds(then: datetime, now: float) -> float:
    return now - then.timestamp()
