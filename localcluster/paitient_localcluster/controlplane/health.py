"""Health probes of the control plane's programs: one plain HTTP(S) GET of a health endpoint.

Not the Kubernetes client: they run before the API server answers (etcd's health, the API
server's own readiness) and when no cluster runs at all, where one quick refusal is the answer
and the client's retries would only delay it.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

from ..host.processes import probe_context
from .pki import Pki


def etcd_healthy(port: int) -> bool:
    body = _get(f"http://127.0.0.1:{port}/health", None)
    return body is not None and '"health":"true"' in body.replace(" ", "")


def apiserver_ready(server: str, pki: Pki) -> bool:
    """``/readyz`` answers ``ok`` to the admin identity."""
    if not pki.exists():
        return False
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.client_cert("admin")), str(pki.client_key("admin")))
    return _get(f"{server}/readyz", context) == "ok"


def serves_healthz(port: int) -> bool:
    """The controller manager's or the scheduler's ``/healthz``: their serving certificates are
    self-signed at start, and ``/healthz`` is open to anyone."""
    return _get(f"https://127.0.0.1:{port}/healthz", probe_context()) == "ok"


def _get(url: str, context: ssl.SSLContext | None) -> str | None:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return None
