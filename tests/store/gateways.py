"""Gateway processes that share a store, in front of one vLLM stand-in, for a tenant whose
tier the test chooses (keys from a file: no cluster)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.standins.processes import Caller, Proc, start_gateway, start_standin, write_keys_file

TENANT = "shared"
NAMESPACE = "tenant-acme"


def write_tenant(
    path: Path,
    tokens_per_minute: int,
    usage_limit: int | None,
    requests_per_minute: int = 100_000,
    current_usage: int = 0,
) -> Caller:
    tenant: dict[str, Any] = {"name": TENANT, "clientId": "shared-app", "tier": "burst",
                              "namespace": NAMESPACE, "currentUsage": current_usage}  # fmt: skip
    if usage_limit is not None:
        tenant["usageLimit"] = usage_limit
    callers = write_keys_file(path, [tenant])
    data = json.loads(path.read_text())
    data["tiers"] = {
        "burst": {
            "tokenLimit": 10**9, "requestsPerMinute": requests_per_minute,
            "tokensPerMinute": tokens_per_minute, "maxDeployments": 1, "maxGpus": 0,
            "gpusAllowed": False,
        }
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return callers[TENANT]


@contextlib.contextmanager
def gateways(
    work: Path, keys: Path, count: int, env: dict[str, str]
) -> Iterator[tuple[Proc, list[Proc]]]:
    """A stand-in and ``count`` gateways (one ledger each), all stopped afterwards."""
    standin = start_standin(work)
    started: list[Proc] = []
    try:
        with ThreadPoolExecutor(count) as pool:
            futures = [
                pool.submit(
                    start_gateway, work, keys, work / f"ledger-{n}", standin.url,
                    {"PAITIENT_POD_NAME": f"replica-{n}", "PAITIENT_STORE_HEARTBEAT_SECONDS": "0.5", **env},
                )
                for n in range(count)
            ]  # fmt: skip
            failures = []
            for future in futures:
                try:
                    started.append(future.result())
                except Exception as exc:
                    failures.append(exc)
            if failures:
                raise failures[0]
        yield standin, started
    finally:
        for proc in started:
            proc.stop()
        standin.stop()


def metric(text: str, name: str) -> float:
    """One unlabelled sample of a Prometheus text page (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
