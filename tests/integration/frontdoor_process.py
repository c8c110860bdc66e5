"""Run the front door (``paitient-api``) as a process on 127.0.0.1 for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from paitient_localcluster.host.processes import free_port, probe_context, wait_http_ok


class ApiProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        gateway_url: str = "http://127.0.0.1:9",
        system_namespace: str | None = None,
        env: dict[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """``tls``: (certificate, key) files to serve HTTPS with."""
        self.port = free_port()
        self.env = env or {}
        scheme = "https" if tls else "http"
        self.root = f"{scheme}://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        self.kubeconfig, self.log, self.gateway_url = kubeconfig, log, gateway_url
        self.system_namespace, self.tls, self.extra_args = system_namespace, tls, extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        argv = [
            sys.executable, "-m", "paitient_api.main", "--host", "127.0.0.1", "--port", str(self.port),
            "--kubeconfig", str(self.kubeconfig), "--gateway-url", self.gateway_url,
            "--shutdown-delay", "0",  # no Service to take it out of: stop at once
        ]  # fmt: skip
        if self.system_namespace:
            argv += ["--system-namespace", self.system_namespace]
        if self.tls:
            argv += ["--tls-cert-file", str(self.tls[0]), "--tls-key-file", str(self.tls[1])]
        argv += list(self.extra_args)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **self.env},
            )  # fmt: skip
        context = probe_context() if self.tls else None
        if wait_http_ok(f"{self.root}/readyz", timeout, alive=self._alive, context=context):
            return
        raise RuntimeError(f"paitient-api not ready: {self.log.read_text()[-2000:]}")

    def _alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"paitient-api exited: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def call(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP call; (status, headers, parsed JSON or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, hdrs, payload = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, payload = err.code, dict(err.headers), err.read()
    text = payload.decode(errors="replace")
    try:
        return status, hdrs, json.loads(text)
    except ValueError:
        return status, hdrs, text
