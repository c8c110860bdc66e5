"""One gateway in front of each model server, started once per session (vLLM takes a minute).

The gateway starts first, so the session's start-up is itself the "vLLM slow to start" case:
what the gateway answered while the model server loaded is recorded for that test.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.waiting import wait_for
from tests.standins.client import Answer, sync_call
from tests.standins.processes import Caller, Proc, wait_http
from tests.vllm.upstreams import (
    SERVED_MODEL,
    VLLM_START_TIMEOUT,
    Upstream,
    start_gateway_for,
    vllm_available,
)


@dataclass
class StartupSeen:
    """What clients and the kubelet's probes saw while the model server was loading."""

    readiness: list[tuple[bool, int]] = field(default_factory=list)  # (upstream open, status)
    requests: list[Answer] = field(default_factory=list)
    ready_after_upstream: bool = False


@dataclass
class Stack:
    upstream: Upstream
    gateway: Proc
    caller: Caller
    ledger_dir: Path
    startup: StartupSeen

    def url(self, path: str) -> str:
        return self.gateway.url + path

    def post(self, path: str, body: Any, request_id: str | None = None) -> Answer:
        headers = self.caller.headers()
        if request_id is not None:
            headers["x-request-id"] = request_id
        return sync_call("POST", self.url(path), body, headers=headers, timeout=120)

    def direct(self, path: str, body: Any) -> Answer:
        """The same request straight to the model server, as vLLM's own client would send it."""
        return sync_call(
            "POST", self.upstream.url + path, {"model": SERVED_MODEL, **body}, timeout=120
        )

    def ledger(self) -> dict[str, dict[str, Any]]:
        """The gateway's ledger records by request id (appended before a client gets its usage)."""
        records: dict[str, dict[str, Any]] = {}
        for path in sorted(self.ledger_dir.glob("usage-*.jsonl")):
            for line in path.read_bytes().splitlines():
                if line.strip():
                    record = json.loads(line)
                    assert record["request_id"] not in records, "a request recorded twice"
                    records[record["request_id"]] = record
        return records

    def ensure_upstream(self) -> None:
        """Restart the model server if a test killed it."""
        if not self.upstream.alive():
            self.upstream.start()
            wait_http(f"{self.upstream.url}/health", VLLM_START_TIMEOUT, self.upstream.proc)
            wait_http(self.url("/healthz/ready"), 30)


BACKENDS = ["standin", "vllm"]


@pytest.fixture(scope="session", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind = request.param
    if kind == "vllm" and (reason := vllm_available()) is not None:
        pytest.skip(reason)
    logs = tmp_path_factory.mktemp(f"contract-{kind}")
    upstream = Upstream(kind, logs)
    started = start_gateway_for(upstream, logs)
    gateway, caller, ledger = started.proc, started.caller, started.ledger_dir
    try:
        startup = StartupSeen()
        upstream.start()
        assert upstream.proc is not None
        stack = Stack(upstream, gateway, caller, ledger, startup)

        def loaded() -> bool:
            upstream_up = (
                sync_call("GET", f"{upstream.url}/health").status == 200
                if _open(upstream)
                else False
            )
            status = sync_call("GET", stack.url("/healthz/ready")).status
            startup.readiness.append((upstream_up, status))
            if not upstream_up and len(startup.requests) < 3:
                startup.requests.append(
                    stack.post("/v1/completions", {"prompt": "hi", "max_tokens": 1})
                )
            if upstream_up and status == 200:
                startup.ready_after_upstream = True
            if upstream.proc is not None and upstream.proc.popen.poll() is not None:
                raise AssertionError(
                    f"{kind} exited while starting: {upstream.proc.output()[-3000:]}"
                )
            return startup.ready_after_upstream

        wait_for(loaded, timeout=VLLM_START_TIMEOUT, interval=0.5, what=f"{kind} to load")
        yield stack
    finally:
        upstream.stop()
        gateway.stop()


def _open(upstream: Upstream) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", upstream.port)) == 0
