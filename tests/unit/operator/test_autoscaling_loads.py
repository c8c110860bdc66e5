"""The autoscaler reads the same load report as the front doors' replica pickers (the gateway's
``GET /healthz/load``, ``paitient_common.gateway_load``): what a gateway writes is what both
read, and what the gateway could not say stays unknown rather than idle. And the same pass
notices a deployment waiting for KEDA's CRDs."""

from __future__ import annotations

import json
import math
from typing import Any

from paitient_common.gateway_load import GatewayLoad
from paitient_operator.autoscaling.loads import replica_load
from paitient_operator.autoscaling.worker import waits_for_keda


def test_a_report_reads_back_as_written_draining_included() -> None:
    for report in (GatewayLoad(3, 2.0, 1.0), GatewayLoad(0, draining=True)):
        assert GatewayLoad.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_a_report_is_the_replicas_load() -> None:
    load = replica_load("m-0", GatewayLoad(4, running=3.0, waiting=1.0, draining=True))
    assert (load.pod, load.in_flight, load.running, load.waiting) == ("m-0", 4.0, 3.0, 1.0)
    assert load.draining and load.known


def test_what_vllm_did_not_say_is_unknown_not_zero() -> None:
    # Zero would read as "idle" and let the autoscaler remove a busy replica.
    load = replica_load("m-0", GatewayLoad(2))
    assert load.known and math.isnan(load.running) and math.isnan(load.waiting)


def test_no_report_is_an_unknown_load() -> None:
    load = replica_load("m-0", GatewayLoad.from_json({"running": 1}))
    assert not load.known and not load.draining


def test_a_keda_deployment_waits_for_keda_while_its_status_says_the_crds_were_missing() -> None:
    def md(engine: str, reason: str, deleting: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": "m", "namespace": "ns"}
        if deleting:
            meta["deletionTimestamp"] = "2026-12-07T15:00:00Z"
        condition = {"type": "AutoscalerActive", "status": "False", "reason": reason}
        return {"metadata": meta, "spec": {"autoscaling": {"engine": engine}},
                "status": {"conditions": [condition]}}  # fmt: skip

    assert waits_for_keda(md("keda", "KEDANotInstalled"))
    assert not waits_for_keda(md("keda", "KEDAScaledObject"))
    assert not waits_for_keda(md("native", "KEDANotInstalled"))
    assert not waits_for_keda(md("keda", "KEDANotInstalled", deleting=True))
    assert not waits_for_keda({"metadata": {}, "spec": {}})
