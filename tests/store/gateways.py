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
    """A keys file with the one tenant ``shared`` on a tier of these limits."""
    return write_tenants(
        path, {TENANT: (tokens_per_minute, usage_limit)}, requests_per_minute, current_usage
    )[TENANT]


def write_tenants(
    path: Path,
    limits: dict[str, tuple[int, int | None]],
    requests_per_minute: int = 100_000,
    current_usage: int = 0,
) -> dict[str, Caller]:
    """A keys file with a tenant per name, each on a tier of its own: (tokens per minute,
    usage limit or None); all in ``tenant-acme``."""
    tenants, tiers = [], {}
    for name, (tokens_per_minute, usage_limit) in limits.items():
        tenant: dict[str, Any] = {"name": name, "clientId": f"{name}-app", "tier": f"tier-{name}",
                                  "namespace": NAMESPACE, "currentUsage": current_usage}  # fmt: skip
        if usage_limit is not None:
            tenant["usageLimit"] = usage_limit
        tenants.append(tenant)
        tiers[f"tier-{name}"] = {
            "tokenLimit": 10**9, "requestsPerMinute": requests_per_minute,
            "tokensPerMinute": tokens_per_minute, "maxDeployments": 1, "maxGpus": 0,
            "gpusAllowed": False,
        }  # fmt: skip
    callers = write_keys_file(path, tenants)
    data = json.loads(path.read_text())
    data["tiers"] = tiers
    path.write_text(json.dumps(data))
    return callers


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
