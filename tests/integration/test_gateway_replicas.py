"""The multi-replica bound of docs/gateway.md, without a shared store: two gateway replicas that
never learn of each other's usage (no cluster to aggregate it) each admit up to the tenant's
usage limit on its own view, so together they pass it, by no more than ``N - 1`` times the
headroom they last saw. Each must be refused for the usage limit itself: the rates are far
away, so no rate bucket stops a replica first. (The same burst with the store:
``tests/store/test_gateways_share_limits.py``, overshoot 0.)
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.standins.client import Answer, sync_call
from tests.standins.processes import Proc, start_gateway, start_standin, write_keys_file

LIMIT = 95  # the tenant's usage limit for the period, tokens
BODY = {"prompt": "a", "max_tokens": 9}  # estimated at 2 + 9 tokens, really uses 1 + 9
REPLICAS = 2
USAGE_LIMIT_REFUSAL = "usage limit for the period reached"


def _rejections(gateway: Proc) -> dict[str, float]:
    text = sync_call("GET", f"{gateway.url}/metrics").body.decode()
    found = re.findall(r'paitient_gateway_rejections_total\{reason="(\w+)"\} (\S+)', text)
    return {reason: float(value) for reason, value in found if float(value)}


def test_replicas_unaware_of_each_other_each_spend_the_headroom_and_are_refused_for_the_limit(
    tmp_path: Path,
) -> None:
    standin = start_standin(tmp_path)
    gateways: list[Proc] = []
    try:
        keys = tmp_path / "keys.json"
        callers = write_keys_file(
            keys,
            [{"name": "shared", "clientId": "shared-app", "tier": "roomy", "usageLimit": LIMIT}],
            allowed_namespaces=[],
        )
        data = json.loads(keys.read_text())
        data["tenants"][0]["namespace"] = "tenant-acme"
        data["tiers"] = {
            "roomy": {
                "tokenLimit": 10**9, "requestsPerMinute": 100_000, "tokensPerMinute": 10**6,
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
        refusals: list[Answer | None] = [None] * REPLICAS
        for _ in range(20):  # each replica serves until it refuses: 9 requests each
            for n, gateway in enumerate(gateways):
                if refusals[n] is not None:
                    continue
                answer = sync_call("POST", f"{gateway.url}/v1/completions", BODY, headers=headers)
                if answer.status == 429:
                    refusals[n] = answer
                else:
                    assert answer.status == 200, answer.body
                    used[n] += answer.json()["usage"]["total_tokens"]
            if all(refusals):
                break
        rejections = [_rejections(g) for g in gateways]
    finally:
        for gateway in gateways:
            gateway.stop()
        standin.stop()

    for refusal in refusals:
        assert refusal is not None, "every replica stopped on its own view"
        assert refusal.json()["error"]["message"] == USAGE_LIMIT_REFUSAL, refusal.body
    assert rejections == [{"usage_limit": 1.0}] * REPLICAS  # and nothing for a rate
    # Alone, each admits while its usage plus the next estimate (11) fits: 9 requests of 10.
    assert used == [90] * REPLICAS
    overshoot = sum(used) - LIMIT
    assert 0 < overshoot <= (REPLICAS - 1) * LIMIT, (used, overshoot)
