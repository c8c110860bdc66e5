"""The two model servers the contract tests run against: real vLLM and the stand-in.

Real vLLM runs the operator's own rendered container for a CPU ModelDeployment serving the tiny
model: from the built ``vllm-cpu`` image under podman (``in_image.py``; needs ``make images``),
or, for a developer with ``PAITIENT_VLLM_PYTHON`` (a Python with vllm-cpu installed) and
``PAITIENT_TINY_MODEL`` (the model directory) set, as a local process with the operator's
arguments and environment and the pod's paths moved to the test's directories. Without either
the real-vLLM half is skipped with the reason, or fails under CI and `make test`
(``tests/prerequisites.py``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_localcluster.host.processes import free_port
from paitient_operator.builders.deployment import POD_TMP, vllm_env
from paitient_operator.builders.vllm_args import build_vllm_args
from paitient_operator.config import OperatorConfig
from tests.integration.waiting import wait_for
from tests.standins.processes import (
    PYTHON,
    Caller,
    Proc,
    _start,
    configure_standin,
    wait_http,
    write_keys_file,
)
from tests.vllm.in_image import ImageRunner

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
    runner: ImageRunner | None = None  # real vLLM from the image; a local process when None
    port: int = field(default_factory=free_port)
    proc: Proc | None = None
    container: Any = None
    starts: int = 0
    _armed: int = 0  # the container's host pid, looked up by arm_kill

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
        state = self.logs / f"vllm-state-{self.starts}"
        if self.runner is not None:
            md = tiny_model_deployment(Path(image_model_name()))
            name = f"vllm-{self.port}-{self.starts}"
            self.container = self.runner.start(name, md, self.port, state)
            return
        python, model = os.environ[VLLM_PYTHON_ENV], Path(os.environ[TINY_MODEL_ENV])
        for sub in ("cache", "tmp"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        args, env = rendered_command(model, state / "cache", state / "tmp", self.port)
        command = [python, "-m", "vllm.entrypoints.openai.api_server", *args]
        self.proc = _start(command, self.port, self.logs, f"vllm-{self.starts}", env)

    def alive(self) -> bool:
        if self.container is not None:
            return bool(self.container.running())
        return self.proc is not None and self.proc.popen.poll() is None

    def output(self) -> str:
        """The server's last output, for a failure message."""
        if self.container is not None:
            return str(self.container.logs())
        return self.proc.output()[-4000:] if self.proc is not None else ""

    def wait_healthy(self, timeout: float) -> None:
        def check() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.kind} exited: {self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for(check, timeout=timeout, interval=0.5, what=f"{self.kind} healthy")

    def arm_kill(self) -> None:
        """Look up now what ``kill`` will signal, so the kill itself is one system call: a
        `podman kill` takes long enough for real vLLM (~250 tokens/s here) to finish the
        generation it was meant to cut."""
        if self.container is not None:
            self._armed = int(self.container.host_pid())

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: the whole process group, or the container
        (its first process: the container ends with it)."""
        if self.container is not None:
            pid = self._armed or int(self.container.host_pid())
            self._armed = 0
            os.kill(pid, signal.SIGKILL)
        elif self.proc is not None:
            self.proc.kill()

    def stop(self) -> None:
        if self.container is not None:
            self.container.podman.remove(self.container)
        elif self.proc is not None:
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
    """A gateway process in front of an upstream; ``caller`` is tenant acme's, ``others`` hold
    a second tenant of the same namespace (beta), for what must differ between tenants."""

    proc: Proc
    caller: Caller
    ledger_dir: Path
    others: dict[str, Caller] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.proc.url


def start_gateway_for(upstream: Upstream, logs: Path) -> Gateway:
    """A gateway for ``upstream`` as the operator configures it (no PAITIENT_MAX_MODEL_LEN: it
    learns the context from /v1/models). Waits for it to be live, not ready.

    Plain HTTP on loopback (``--insecure-plaintext``, like ``processes.start_gateway``'s
    default): these tests are about vLLM's protocol behind the gateway, not the transport; TLS
    on the gateway's port is tested in tests/unit/common/test_tls.py, tests/integration/test_tls.py
    and by the image tests."""
    keys = logs / "keys.json"
    tenants = [
        {"name": "acme", "clientId": "acme-app", "namespace": "tenant-acme"},
        {"name": "beta", "clientId": "beta-app", "namespace": "tenant-acme"},
    ]
    callers = write_keys_file(keys, tenants)
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
    args.append("--insecure-plaintext")
    proc = _start(args, port, logs, "gateway", env)
    try:
        wait_http(f"{proc.url}/healthz/live", 30, proc)
    except BaseException:
        proc.stop()
        raise
    return Gateway(proc, callers["acme"], ledger, {"beta": callers["beta"]})


def run_in_vllm(
    runner: ImageRunner | None, script: str, data: object, scratch: Path
) -> tuple[int, str, str]:
    """Run ``script`` with the vLLM environment's Python; ``data`` as JSON in argv[1]'s file."""
    if runner is not None:
        return runner.python(script, data, scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "in.json").write_text(json.dumps(data))
    python = os.environ[VLLM_PYTHON_ENV]
    command = [python, "-c", script, str(scratch / "in.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    return done.returncode, done.stdout, done.stderr


def local_vllm_missing() -> str | None:
    """Why a local vLLM process cannot run here, or None when it can."""
    missing = [name for name in (VLLM_PYTHON_ENV, TINY_MODEL_ENV) if not os.environ.get(name)]
    if missing:
        return f"real vLLM: set {' and '.join(missing)}"
    if not (Path(os.environ[TINY_MODEL_ENV]) / "config.json").is_file():
        return f"real vLLM: {os.environ[TINY_MODEL_ENV]} holds no model (config.json)"
    return None


def image_model_name() -> str:
    """The directory the tiny-model image copies its model to."""
    from paitient_images.tinymodel import MODEL_NAME  # noqa: PLC0415 - comes with make images

    return str(MODEL_NAME)
