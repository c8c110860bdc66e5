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
from tests.prerequisites import missing
from tests.standins.client import Answer, sync_call
from tests.standins.processes import Caller, Proc, wait_http
from tests.vllm.in_image import ImageRunner, image_missing
from tests.vllm.upstreams import (
    SERVED_MODEL,
    VLLM_START_TIMEOUT,
    Upstream,
    local_vllm_missing,
    start_gateway_for,
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
    others: dict[str, Caller] = field(default_factory=dict)  # tenant beta's caller

    def url(self, path: str) -> str:
        return self.gateway.url + path

    def post(
        self, path: str, body: Any, request_id: str | None = None, caller: Caller | None = None
    ) -> Answer:
        headers = (caller or self.caller).headers()
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
            self.restart_upstream()

    def restart_upstream(self) -> None:
        """A new model server, serving, and the gateway ready on it (after a kill, whose
        container may still read as running for a moment)."""
        self.upstream.stop()
        self.upstream.start()
        self.upstream.wait_healthy(VLLM_START_TIMEOUT)
        wait_http(self.url("/healthz/ready"), 30)


@dataclass
class VllmSource:
    """Where real vLLM comes from this session: the image (``runner``), a local Python, or
    nowhere (``missing`` says why)."""

    runner: ImageRunner | None
    missing: str | None


@pytest.fixture(scope="session")
def vllm_source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> VllmSource:
    if local_vllm_missing() is None:  # a developer's own vLLM environment
        return VllmSource(None, None)
    if (missing := image_missing()) is not None:
        return VllmSource(None, missing)
    # The session's podman store (tests/conftest.py): the images tests may have loaded the
    # archives already.
    podman = request.getfixturevalue("podman_store")
    return VllmSource(ImageRunner(podman, tmp_path_factory.mktemp("vllm-image")), None)


BACKENDS = ["standin", pytest.param("vllm", marks=pytest.mark.real_vllm)]


@pytest.fixture(scope="session", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kind = request.param
    runner = None
    if kind == "vllm":
        source: VllmSource = request.getfixturevalue("vllm_source")
        if source.missing is not None:
            missing(source.missing)
        runner = source.runner
    logs = tmp_path_factory.mktemp(f"contract-{kind}")
    upstream = Upstream(kind, logs, runner)
    started = start_gateway_for(upstream, logs)
    gateway, caller, ledger = started.proc, started.caller, started.ledger_dir
    try:
        startup = StartupSeen()
        upstream.start()
        stack = Stack(upstream, gateway, caller, ledger, startup, started.others)

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
            if not upstream.alive():
                raise AssertionError(f"{kind} exited while starting: {upstream.output()}")
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
