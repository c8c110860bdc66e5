"""Run the front door (``paitient-api``) as a process on 127.0.0.1 for integration tests, serving
HTTPS as the product's does: with a certificate from the session's front-door CA
(``FrontDoorCA``, which the integration conftest makes and names in ``PAITIENT_CA_BUNDLE`` and
``NODE_EXTRA_CA_CERTS``, so both SDKs, Node's openai package and ``call`` trust it, and nothing
else does). Without a session CA (a benchmark), plain HTTP."""

from __future__ import annotations

import itertools
import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from paitient_common.tls import client_context
from paitient_localcluster.host.processes import free_port, probe_context, wait_http_ok
from paitient_operator.certificates import x509

CA_BUNDLE_ENV = "PAITIENT_CA_BUNDLE"


class FrontDoorCA:
    """A CA of the test session's own, and serving certificates for 127.0.0.1 and localhost
    from it, as files under ``directory``."""

    def __init__(self, directory: Path) -> None:
        now = datetime.now(UTC)
        self.directory = directory
        self.authority = x509.new_authority(
            "integration tests' front-door CA", timedelta(days=2), now
        )
        self.bundle = directory / "front-door-ca.pem"
        self.bundle.write_text(self.authority.cert_pem)
        self._serial = itertools.count(1)

    def issue(self) -> tuple[Path, Path]:
        """A fresh serving certificate and key (files), valid a day."""
        n = next(self._serial)
        leaf = x509.issue(
            self.authority, ["localhost", "127.0.0.1"], timedelta(days=1), datetime.now(UTC)
        )
        cert, key = self.directory / f"front-door-{n}.crt", self.directory / f"front-door-{n}.key"
        cert.write_text(leaf.cert_pem)
        key.write_text(leaf.key_pem)
        key.chmod(0o600)
        return cert, key


SESSION_CA: FrontDoorCA | None = None  # set by the integration conftest for the session


def client_trust() -> ssl.SSLContext | None:
    """The context a client of the test front doors uses: trusting the bundle the environment
    names (as the SDKs do), or None (the system's) when none is named."""
    bundle = os.environ.get(CA_BUNDLE_ENV)
    return client_context(Path(bundle).read_text()) if bundle else None


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
        """``tls``: (certificate, key) files to serve HTTPS with; by default one from the
        session's CA (plain HTTP only when there is none)."""
        if tls is None and SESSION_CA is not None:
            tls = SESSION_CA.issue()
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
    context = client_trust() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            status, hdrs, payload = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, payload = err.code, dict(err.headers), err.read()
    text = payload.decode(errors="replace")
    try:
        return status, hdrs, json.loads(text)
    except ValueError:
        return status, hdrs, text
