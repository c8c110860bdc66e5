"""The model server's load as the gateway reads it from vLLM's /metrics text."""

from __future__ import annotations

import math

from paitient_gateway.model_load import parse_model_load

# As vLLM 0.32 exports them (labels by model and engine), among others.
VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny"} 5.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.25
"""


def test_both_gauges_are_read() -> None:
    load = parse_model_load(VLLM_METRICS)
    assert (load.running, load.waiting) == (3.0, 5.0)


def test_engines_are_summed() -> None:
    two = VLLM_METRICS + 'vllm:num_requests_waiting{engine="1",model_name="tiny"} 2.0\n'
    assert parse_model_load(two).waiting == 7.0


def test_a_gauge_vllm_did_not_export_is_nan_not_zero() -> None:
    # Zero would read as "idle" and let an autoscaler remove a busy replica.
    load = parse_model_load("# TYPE other gauge\nother 1\n")
    assert math.isnan(load.running) and math.isnan(load.waiting)
