"""The multi-replica bound of docs/gateway.md, measured: two gateway replicas that never learn
each other's usage (no cluster to aggregate it) overshoot a tenant's usage limit together, by no
more than ``(N - 1) * tokens_per_minute * (1 + T / 60)``, where T is how long they stay unaware.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.standins.client import sync_call
from tests.standins.processes import Proc, start_gateway, start_standin, write_keys_file

LIMIT = 95  # the tenant's usage limit for the period, tokens: more than a bucket, less than two
TOKENS_PER_MINUTE = 60  # its tier's rate: a replica's bucket holds a minute's worth
BODY = {"prompt": "a", "max_tokens": 9}  # estimated at 2 + 9 tokens, really uses 1 + 9
REPLICAS = 2


def test_replicas_unaware_of_each_other_overshoot_the_usage_limit_within_the_bound(
    tmp_path: Path,
) -> None:
    standin = start_standin(tmp_path)
    gateways: list[Proc] = []
    try:
        keys = tmp_path / "keys.json"
        callers = write_keys_file(
            keys,
            [{"name": "shared", "clientId": "shared-app", "tier": "burst", "usageLimit": LIMIT}],
            allowed_namespaces=[],
        )
        data = json.loads(keys.read_text())
        data["tenants"][0]["namespace"] = "tenant-acme"
        data["tiers"] = {
            "burst": {
                "tokenLimit": 10**9, "requestsPerMinute": 1000, "tokensPerMinute": TOKENS_PER_MINUTE,
                "maxDeployments": 1, "maxGpus": 0, "gpusAllowed": False,
            }
        }  # fmt: skip
        keys.write_text(json.dumps(data))
        with ThreadPoolExecutor(REPLICAS) as pool:  # both start at once
            starting = [
                pool.submit(
                    start_gateway, tmp_path, keys, tmp_path / f"ledger-{n}", standin.url,
                    {"PAITIENT_POD_NAME": f"replica-{n}"},
                )
                for n in range(REPLICAS)
            ]  # fmt: skip
            failures = []
            for future in starting:  # keep every one that started, so all are stopped
                try:
                    gateways.append(future.result())
                except Exception as exc:
                    failures.append(exc)
            if failures:
                raise failures[0]

        headers = callers["shared"].headers()
        used = [0] * REPLICAS
        refused = [False] * REPLICAS
        started = time.monotonic()
        for _ in range(40):  # each replica serves until it refuses; a few dozen at most
            for n, gateway in enumerate(gateways):
                if refused[n]:
                    continue
                answer = sync_call("POST", f"{gateway.url}/v1/completions", BODY, headers=headers)
                if answer.status == 429:
                    refused[n] = True
                else:
                    assert answer.status == 200, answer.body
                    used[n] += answer.json()["usage"]["total_tokens"]
            if all(refused):
                break
        unaware = time.monotonic() - started
    finally:
        for gateway in gateways:
            gateway.stop()
        standin.stop()

    assert all(refused), "every replica stopped on its own view"
    assert all(u <= LIMIT for u in used)  # alone, no replica passes the limit
    overshoot = sum(used) - LIMIT
    bound = (REPLICAS - 1) * min(LIMIT, TOKENS_PER_MINUTE * (1 + unaware / 60))
    assert 0 < overshoot <= bound, (used, overshoot, bound)
