"""What the CPU build of vLLM needs to fit its pod: a KV-cache size and a thread count (pure).

Without ``VLLM_CPU_KVCACHE_SPACE`` CPU vLLM sizes its KV cache from the *host's* memory, not the
pod's limit, and with its default ``auto`` thread binding it runs one OpenMP thread on every core
of the NUMA node: on a shared node it asks for most of the machine. So the operator derives both
from the spec.

KV cache (GiB, whole: vLLM reads an integer)::

    kv = runtime.cpuKvCacheSpace, or else max(1, floor((memory - RUNTIME_RESERVE) / 3))

``RUNTIME_RESERVE`` is what vLLM uses besides weights and KV cache: three processes (API server,
engine core, worker) with torch loaded, their shared libraries and the kernels compiled into
``/tmp`` and queues in ``/dev/shm`` (memory-backed volumes count against the pod's memory) —
measured at 3.0 GiB with vLLM 0.32.0 and a tiny model, rounded up to 4 GiB. Of what remains, one
third goes to the KV cache and two thirds stay for the weights and activations (an 8B model in
bf16 is 16 GB: with the default 32Gi it gets 19 GiB, and a 9 GiB KV cache). The weights are not
known when the pod is made, so a spec whose model is large next to its memory sets
``runtime.cpuKvCacheSpace`` itself; either way the KV cache plus the reserve must leave memory over.

Threads: ``OMP_NUM_THREADS = max(1, floor(cpu request) - 1)``, leaving one core to the API server
and scheduler as vLLM's own binding does, and ``VLLM_CPU_OMP_THREADS_BIND=nobind``: the operator's
pods are Burstable (no CPU limit) and share the node's cores, so pinning threads to core ids would
put every such pod on the same cores.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.errors import InvalidSpec
from paitient_operator.quantity import GIB, parse_quantity

RUNTIME_RESERVE_GIB: Final = 4
KV_CACHE_SHARE: Final = Decimal(1) / 3
MIN_KV_CACHE_GIB: Final = 1


def cpu_kv_cache_gib(md: ModelDeployment) -> int:
    """``VLLM_CPU_KVCACHE_SPACE`` for a CPU deployment; ``InvalidSpec`` when it cannot fit."""
    memory_gib = parse_quantity(md.spec.resources.memory) / GIB
    override = md.spec.runtime.cpu_kv_cache_space
    if override is not None:
        kv = math.floor(parse_quantity(override) / GIB)
        if kv < MIN_KV_CACHE_GIB:
            raise InvalidSpec(
                f"spec.runtime.cpuKvCacheSpace {override} is below 1Gi (vLLM takes whole GiB)"
            )
        if kv + RUNTIME_RESERVE_GIB >= memory_gib:
            raise InvalidSpec(
                f"spec.runtime.cpuKvCacheSpace {override} leaves no memory for the weights: "
                f"spec.resources.memory {md.spec.resources.memory} minus vLLM's "
                f"{RUNTIME_RESERVE_GIB}Gi runtime is {_gib(memory_gib - RUNTIME_RESERVE_GIB)}"
            )
        return kv
    spare = memory_gib - RUNTIME_RESERVE_GIB
    kv = max(MIN_KV_CACHE_GIB, math.floor(spare * KV_CACHE_SHARE))
    if kv >= spare:
        raise InvalidSpec(
            f"spec.resources.memory {md.spec.resources.memory} is too small for CPU vLLM: it "
            f"needs {RUNTIME_RESERVE_GIB}Gi for its runtime and {MIN_KV_CACHE_GIB}Gi of KV cache "
            f"plus the model's weights, so more than "
            f"{RUNTIME_RESERVE_GIB + MIN_KV_CACHE_GIB}Gi"
        )
    return kv


def cpu_threads(md: ModelDeployment) -> int:
    """OpenMP threads for the CPU request: one core stays with the server and scheduler."""
    cores = parse_quantity(md.spec.resources.cpu)
    return max(1, math.floor(cores) - 1)


def cpu_env(md: ModelDeployment) -> dict[str, str]:
    """The environment that sizes CPU vLLM to its pod."""
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(cpu_kv_cache_gib(md)),
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": str(cpu_threads(md)),
    }


def _gib(value: Decimal) -> str:
    return f"{value.normalize():f}Gi"
