"""Where vLLM keeps what a start can reuse, on the deployment's model-cache volume (pure).

A start compiles: vLLM traces the model (``VLLM_CACHE_ROOT/torch_compile_cache``), PyTorch's
Inductor builds kernels (``TORCHINDUCTOR_CACHE_DIR``; Triton's on GPUs, ``TRITON_CACHE_DIR``) and,
on CPUs, precompiles ATen's headers (150 MB, into ``$TMPDIR/torchinductor_<user>``). By default
all but the first land in the memory-backed ``/tmp`` and die with the pod, so every start of a
replica, scale-from-zero included, compiled again. Here every one of them lives on the volume:
the compiled graphs and kernels in a directory keyed by the vLLM image and the model, so a
second start of the same model with the same vLLM reuses them and a new image or model never
reads another's; the precompiled headers at the volume's root (``TMPDIR``: it must exist before
vLLM starts, and PyTorch keys those headers by the compiler and their content itself).

vLLM 0.32's CPU build saves an ahead-of-time compiled graph that its next start cannot load
("'function' object has no attribute 'finalize_loading'") and then compiles again: on CPUs
``VLLM_USE_AOT_COMPILE=0`` keeps to the compile cache that does load.
"""

from __future__ import annotations

import hashlib

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.config import OperatorConfig


def vllm_image(md: ModelDeployment, config: OperatorConfig) -> str:
    return md.spec.runtime.image or (
        config.vllm_image if md.spec.use_gpu else config.vllm_cpu_image
    )


def start_cache_key(md: ModelDeployment, config: OperatorConfig) -> str:
    """Names one vLLM build and one model (its source and revision)."""
    model = md.spec.model
    source = model.uri or f"{model.name}@{model.revision}"
    return hashlib.sha256(f"{vllm_image(md, config)}\n{source}".encode()).hexdigest()[:16]


def start_cache_env(md: ModelDeployment, config: OperatorConfig) -> dict[str, str]:
    """The vLLM container's cache locations: under ``<cache>/start/<key>``."""
    root = f"{config.model_cache_mount_path.rstrip('/')}/start/{start_cache_key(md, config)}"
    env = {
        "VLLM_CACHE_ROOT": f"{root}/vllm",
        "TORCHINDUCTOR_CACHE_DIR": f"{root}/torchinductor",
        "TRITON_CACHE_DIR": f"{root}/triton",
    }
    if not md.spec.use_gpu:
        env["TMPDIR"] = config.model_cache_mount_path  # tempfile.gettempdir(): the headers
        env["VLLM_USE_AOT_COMPILE"] = "0"
    return env
