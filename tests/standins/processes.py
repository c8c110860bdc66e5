"""Start the vLLM stand-in and the gateway as real processes on 127.0.0.1, and stop them.

Every process is started in its own session and stopped (SIGTERM, then SIGKILL) by ``stop``;
the fixtures that use these call ``stop`` in their teardown.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from paitient_common.apikeys import generate_api_key, new_record
from paitient_localcluster.host.processes import free_port, probe_context, wait_http_ok

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@dataclass
class Proc:
    """A started process, with its output captured in files."""

    popen: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    _files: list[IO[bytes]] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash or node loss looks like to the process."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        self._close()

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._close()

    def _close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()


def _start(args: list[str], port: int, logs: Path, name: str, env: dict[str, str]) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / f"{name}.stdout", logs / f"{name}.stderr"
    fo, fe = out.open("ab"), err.open("ab")
    popen = subprocess.Popen(
        args, cwd=ROOT, stdout=fo, stderr=fe, env={**os.environ, **env}, start_new_session=True
    )
    return Proc(popen, port, out, err, [fo, fe])


def wait_http(url: str, timeout: float = 20.0, proc: Proc | None = None) -> None:
    """Wait for 200 from ``url``; an https URL is probed like the kubelet does, without
    verifying the certificate (readiness, not trust, is the question). A ``proc`` that never
    answers is stopped before the error is raised: its caller never gets it to stop."""

    def alive() -> None:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"process exited: {proc.output()[-2000:]}")

    context = probe_context() if url.startswith("https:") else None
    try:
        if wait_http_ok(url, timeout, alive, context):
            return
    except BaseException:
        if proc is not None:
            proc.stop()
        raise
    if proc is not None:
        proc.stop()
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s")


def start_standin(logs: Path, model: str = "standin-model") -> Proc:
    port = free_port()
    args = [PYTHON, "-m", "tests.standins.vllm_standin", "--port", str(port)]
    proc = _start([*args, "--served-model-name", model], port, logs, f"standin-{port}", {})
    wait_http(f"{proc.url}/health", proc=proc)
    return proc


def start_gateway(
    logs: Path,
    keys_file: Path,
    ledger_dir: Path,
    upstream: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    tls: tuple[Path, Path] | None = None,
    kubeconfig: Path | None = None,
    wait_ready: bool = True,
) -> Proc:
    """The gateway with keys from ``keys_file``: serving TLS with ``tls`` (certificate and key
    files), else plain HTTP (``--insecure-plaintext``: these tests are about auth and metering).
    With ``kubeconfig`` it writes its UsageReports to that cluster. ``wait_ready=False``
    returns as soon as it is started (a test of readiness itself)."""
    port = port or free_port()
    base = {
        "PAITIENT_GATEWAY_HOST": "127.0.0.1",
        "PAITIENT_GATEWAY_PORT": str(port),
        "PAITIENT_UPSTREAM_URL": upstream,
        "PAITIENT_MODELDEPLOYMENT_NAMESPACE": "tenant-acme",
        "PAITIENT_MODELDEPLOYMENT_NAME": "demo",
        "PAITIENT_SERVED_MODEL_NAME": "standin-model",
        "PAITIENT_POD_NAME": "demo-pod-1",
    }
    args = [PYTHON, "-m", "paitient_gateway", "--keys-file", str(keys_file)]
    args += ["--ledger-dir", str(ledger_dir)]
    if kubeconfig is not None:
        args += ["--kubeconfig", str(kubeconfig)]
    if tls is None:
        args.append("--insecure-plaintext")
    else:
        base["PAITIENT_TLS_CERT_FILE"], base["PAITIENT_TLS_KEY_FILE"] = str(tls[0]), str(tls[1])
    proc = _start(args, port, logs, f"gateway-{port}", {**base, **(env or {})})
    proc.scheme = "https" if tls else "http"
    if wait_ready:
        wait_http(f"{proc.url}/healthz/ready", proc=proc)
    return proc


def start_cluster_gateway(
    logs: Path,
    kubeconfig: Path,
    namespace: str,
    upstream: str,
    env: dict[str, str] | None = None,
) -> Proc:
    """A gateway reading keys and tenants from a cluster (watch-fed) for a ModelDeployment
    ``gateway`` in ``namespace``, in front of ``upstream``; ready when it answers its probe.
    Plain HTTP on loopback (``--insecure-plaintext``): these tests are about the caches."""
    port = free_port()
    base = {
        "PAITIENT_GATEWAY_HOST": "127.0.0.1",
        "PAITIENT_GATEWAY_PORT": str(port),
        "PAITIENT_UPSTREAM_URL": upstream,
        "PAITIENT_MODELDEPLOYMENT_NAMESPACE": namespace,
        "PAITIENT_MODELDEPLOYMENT_NAME": "gateway",
        "PAITIENT_SERVED_MODEL_NAME": "standin-model",
        "PAITIENT_POD_NAME": f"gateway-{port}",
    }
    args = [PYTHON, "-m", "paitient_gateway", "--kubeconfig", str(kubeconfig)]
    args += ["--ledger-dir", str(logs / f"ledger-{port}"), "--insecure-plaintext"]
    proc = _start(args, port, logs, f"gateway-{port}", {**base, **(env or {})})
    wait_http(f"{proc.url}/healthz/ready", timeout=60, proc=proc)
    return proc


def configure_standin(standin: Proc | str, **settings: Any) -> None:
    """Set the stand-in's behaviour (``standin``: the process, or its URL)."""
    url = standin if isinstance(standin, str) else standin.url
    request = urllib.request.Request(
        f"{url}/standin/config",
        data=json.dumps(settings).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


@dataclass
class Caller:
    tenant: str
    client_id: str
    key: str = field(repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "X-Client-ID": self.client_id}


def write_keys_file(
    path: Path, tenants: list[dict[str, Any]], allowed_namespaces: list[str] | None = None
) -> dict[str, Caller]:
    """A keys file with one key per tenant; returns the callers by tenant name.

    ``tenants``: ``{"name", "clientId", "namespace"?, "tier"?, "suspended"?, "usageLimit"?}``.
    """
    pepper = secrets.token_bytes(32)
    now = datetime.now(UTC)
    callers, records = {}, []
    for t in tenants:
        key = generate_api_key()
        records.append(
            new_record(key, pepper, t["name"], t["clientId"], now).model_dump(
                mode="json", by_alias=True
            )
        )
        callers[t["name"]] = Caller(t["name"], t["clientId"], key.plaintext)
    data = {
        "pepper": base64.b64encode(pepper).decode(),
        "records": records,
        "tenants": tenants,
        "allowedNamespaces": allowed_namespaces or [],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return callers
