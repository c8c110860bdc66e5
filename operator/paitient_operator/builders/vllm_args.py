"""The vLLM server's command-line arguments, from the spec, and the check on ``extraArgs``.

vLLM listens on 127.0.0.1 only: the gateway sidecar is the pod's one listener, so anything
that would move, widen or duplicate that listener (or its auth, CORS, TLS) is refused, as are
flags the spec already sets (two values for one flag would make the spec lie).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.vllm_flags import (
    VllmFlags,
    is_value,
    pinned_flags,
    read_token,
    unknown_flag_problems,
)
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import ForbiddenRuntimeArgument

VLLM_HOST: Final = "127.0.0.1"

# Flags that would weaken the security model, with the reason shown to the user.
_LISTENER = "vLLM listens on 127.0.0.1 only, behind the gateway"
_CORS = "CORS is the gateway's job"
_TLS = "TLS and client certificates are the gateway's job"
FORBIDDEN_FLAGS: Final[dict[str, str]] = {
    "host": _LISTENER,
    "port": _LISTENER,
    "uds": _LISTENER,
    "api-key": "callers are authenticated by the gateway",
    "allowed-origins": _CORS,
    "allowed-methods": _CORS,
    "allowed-headers": _CORS,
    "allow-credentials": _CORS,
    "ssl-keyfile": _TLS,
    "ssl-certfile": _TLS,
    "ssl-ca-certs": _TLS,
    "ssl-cert-reqs": _TLS,
    "enable-ssl-refresh": _TLS,
    "root-path": "the gateway owns the URL space",
    "middleware": "it loads arbitrary code into the server",
    "config": "a config file could set any refused flag",
    "allowed-local-media-path": "it lets requests read files inside the pod",
    "enable-log-requests": "it logs prompt text, which may be patient data",
    "enable-log-outputs": "it logs generated text, which may be patient data",
}
# Families matched by pattern: --ssl-*, --enable-*-api / -endpoint(s), profiler switches.
FORBIDDEN_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"^ssl-"), _TLS),
    (
        re.compile(r"^enable-.*-(api|apis|endpoint|endpoints)$"),
        "admin, debug and profiling endpoints stay closed",
    ),
    (re.compile(r"^profil"), "admin, debug and profiling endpoints stay closed"),
)
# Flags the spec owns: the user sets the field named here instead.
OWNED_FLAGS: Final[dict[str, str]] = {
    "model": "spec.model.name or spec.model.uri",
    "served-model-name": "spec.model.name",
    "revision": "spec.model.revision",
    "download-dir": "the operator (the model cache volume)",
    "load-format": "the operator (from spec.model.uri)",
    "tensor-parallel-size": "spec.gpu.count",
    "max-model-len": "spec.runtime.maxModelLen",
    "gpu-memory-utilization": "spec.runtime.gpuMemoryUtilization",
    "dtype": "spec.runtime.dtype",
    "quantization": "spec.runtime.quantization",
}
# Switched on in every pod the operator renders unless extraArgs sets them (either way):
# prefix caching (vLLM 0.32's default on GPU and on x86 CPU, said explicitly so a changed
# default cannot turn it off; tenants never share cached blocks, the gateway salts every
# request with its tenant), and the cached prompt tokens in each answer's usage
# (usage.prompt_tokens_details.cached_tokens: a caller sees its own cache hits).
DEFAULT_FLAGS: Final = ("enable-prefix-caching", "enable-prompt-tokens-details")


def _flag_names(arg: str, flags: VllmFlags) -> tuple[str, ...]:
    """The long names of what a token would set (``--max_len=3`` -> ``max-len``, ``-tp`` ->
    ``tensor-parallel-size``, an alias -> every name of its setting); none for values."""
    if is_value(arg) or arg == "--":
        return ()
    # "--host=0.0.0.0" and "--host 0.0.0.0" (one token) both name "host".
    head = re.split(r"[=\s]", arg, maxsplit=1)[0]
    option = read_token(head).option or head
    return tuple(name.lstrip("-") for name in flags.aliases.get(option, (option,)))


def _refusal(name: str) -> str | None:
    if name in FORBIDDEN_FLAGS:
        return FORBIDDEN_FLAGS[name]
    for pattern, reason in FORBIDDEN_PATTERNS:
        if pattern.search(name):
            return reason
    if name in OWNED_FLAGS:
        return f"set {OWNED_FLAGS[name]} instead"
    # argparse accepts unambiguous prefixes: "--ho" would be "--host".
    for full in (*FORBIDDEN_FLAGS, *OWNED_FLAGS):
        if len(name) >= 2 and full.startswith(name):
            return f"it abbreviates --{full}"
    return None


def check_extra_args(extra_args: Sequence[str], flags: VllmFlags | None = None) -> None:
    """Raise ``ForbiddenRuntimeArgument`` naming every refused entry of ``extraArgs``: flags the
    operator forbids or owns, and whatever the pinned vLLM's parser would refuse."""
    flags = flags or pinned_flags()
    problems: list[str] = []
    refused: set[str] = set()
    for arg in extra_args:
        reason = next(filter(None, map(_refusal, _flag_names(arg, flags))), None)
        if reason:
            written = arg.split("=", 1)[0].split()[0]
            refused.add(written)
            problems.append(f"{written} ({reason})")
    for problem in unknown_flag_problems(extra_args, flags):
        if problem.written not in refused:
            problems.append(f"{problem.written} ({problem.reason})")
    if problems:
        raise ForbiddenRuntimeArgument(
            "spec.runtime.extraArgs has entries the operator refuses: " + "; ".join(problems)
        )


def default_flags(extra_args: Sequence[str], flags: VllmFlags | None = None) -> list[str]:
    """``DEFAULT_FLAGS`` that ``extraArgs`` leaves unsaid (``--no-x`` says ``x`` too)."""
    flags = flags or pinned_flags()
    said = {name.removeprefix("no-") for arg in extra_args for name in _flag_names(arg, flags)}
    return [f"--{flag}" for flag in DEFAULT_FLAGS if flag not in said]


def model_argument(md: ModelDeployment, config: OperatorConfig) -> str:
    """What vLLM loads: the repo id, the mounted path of a pvc:// source, or the s3:// URI."""
    source = md.spec.model
    pvc = source.pvc_claim_and_path()
    if pvc is not None:
        _claim, path = pvc
        return f"{config.model_source_mount_path.rstrip('/')}/{path}".rstrip("/")
    if source.uri is not None:
        return source.uri
    assert source.name is not None  # guaranteed by ModelSource's exactly-one rule
    return source.name


def build_vllm_args(md: ModelDeployment, config: OperatorConfig) -> list[str]:
    """The full argument list of the vLLM container; ``ForbiddenRuntimeArgument`` if
    ``extraArgs`` breaks the rules above."""
    spec, runtime, source = md.spec, md.spec.runtime, md.spec.model
    check_extra_args(runtime.extra_args)
    args = ["--host", VLLM_HOST, "--port", str(config.vllm_port)]
    args += ["--model", model_argument(md, config)]
    if source.name is not None:
        args += ["--revision", source.revision]
    elif source.uri is not None and source.uri.startswith("s3://"):
        args += ["--load-format", "runai_streamer"]  # vLLM streams s3:// weights this way
    args += ["--served-model-name", md.served_model_name]
    args += ["--download-dir", config.model_cache_mount_path]
    if spec.use_gpu:
        args += ["--tensor-parallel-size", str(spec.gpu_count)]
        args += ["--gpu-memory-utilization", str(runtime.gpu_memory_utilization)]
    if runtime.max_model_len is not None:
        args += ["--max-model-len", str(runtime.max_model_len)]
    args += ["--dtype", runtime.dtype]
    if runtime.quantization is not None:
        args += ["--quantization", runtime.quantization]
    args += default_flags(runtime.extra_args)
    return args + list(runtime.extra_args)
