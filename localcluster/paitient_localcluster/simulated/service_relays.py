"""The cluster Services a simulated pod's gateway dials (the shared store), reached as a pod on a
real node reaches them: the data plane runs its gateways on the host, where no cluster DNS name
resolves and no ClusterIP routes, so each such Service gets a relay from a 127.0.0.1 port into
the node's network namespace (``host/relay.py``, as the front door's), to the Service's
ClusterIP, where kube-proxy picks a ready endpoint as it would for the pod. The gateway is given
that port in its store URL and the Service's DNS name to verify the store's certificate
against (``PAITIENT_STORE_SERVER_NAME``): TLS is checked as in the pod, against the same name.

The relay dials from the node's own address, which NetworkPolicies admit (traffic from a pod's
local node always is); a real pod is admitted by its labels instead.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from paitient_common.kubeapi import Kube
from paitient_common.service_dns import ServiceName, service_of
from paitient_common.store.settings import DEFAULT_PORT, SERVER_NAME_ENV, URL_ENV

from ..host.processes import free_port, port_owner
from ..host.relay import PortMapping, relay_argv


def store_service(env: dict[str, str]) -> tuple[ServiceName, int] | None:
    """The Service (and its port) the gateway's store URL names; None when it names no Service
    (no store, or one at an address the host reaches itself) (pure)."""
    url = env.get(URL_ENV, "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError:
        return None  # the gateway says what is wrong with it
    service = service_of(parts.hostname or "")
    return (service, port) if service is not None else None


def relayed_store_env(env: dict[str, str], local_port: int) -> dict[str, str]:
    """``env`` with the store URL pointed at the relay's ``127.0.0.1:local_port`` and, for TLS,
    the URL's host kept as the name the certificate must carry (pure)."""
    parts = urlsplit(env[URL_ENV].strip())
    user = f"{parts.username}@" if parts.username else ""
    relayed = urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{local_port}"))
    moved = {**env, URL_ENV: relayed}
    if parts.scheme == "rediss" and not env.get(SERVER_NAME_ENV):
        moved[SERVER_NAME_ENV] = parts.hostname or ""
    return moved


@dataclass
class _Relay:
    mapping: PortMapping
    process: subprocess.Popen[bytes]


@dataclass
class ServiceRelays:
    """One relay per Service port, shared by every gateway that dials it; started when first
    needed, and (``refresh``, every sync) started again on the same port when it died or the
    Service's ClusterIP changed, so the gateways already given that port keep reaching it."""

    kube: Kube
    netns: Path
    log_dir: Path
    relays: dict[tuple[ServiceName, int], _Relay] = field(default_factory=dict)

    def local_port(self, service: ServiceName, port: int) -> int:
        """The 127.0.0.1 port that reaches ``service``'s ``port`` inside the node. Raises when
        the Service is not there (yet): the gateway would not reach it either."""
        found = self.kube.get("v1", "Service", service.name, namespace=service.namespace)
        if found is None:
            raise RuntimeError(f"Service {service.namespace}/{service.name} does not exist (yet)")
        cluster_ip = str((found.get("spec") or {}).get("clusterIP") or "")
        if cluster_ip in ("", "None"):
            raise RuntimeError(f"Service {service.namespace}/{service.name} has no ClusterIP")
        relay = self.relays.get((service, port))
        if relay is not None:
            target = (relay.mapping.target_host, relay.mapping.target_port)
            if relay.process.poll() is None and target == (cluster_ip, port):
                return relay.mapping.listen_port
            self._stop(relay)
        listen = relay.mapping.listen_port if relay is not None else free_port()
        mapping = PortMapping(listen, cluster_ip, port)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"relay-{service.namespace}-{service.name}-{port}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                relay_argv(self.netns, [mapping]), stdout=out, stderr=subprocess.STDOUT
            )
        self.relays[(service, port)] = _Relay(mapping, process)
        _wait_listening(process, mapping.listen_port, log)
        return mapping.listen_port

    def refresh(self) -> list[str]:
        """Check every relay against its Service (see the class); what failed, for the sync."""
        failed = []
        for service, port in list(self.relays):
            try:
                self.local_port(service, port)
            except Exception as exc:  # the Service gone, say: its gateways fail as in a pod
                failed.append(f"relay to {service.namespace}/{service.name}: {exc}")
        return failed

    def stop(self) -> None:
        for relay in self.relays.values():
            self._stop(relay)
        self.relays.clear()

    @staticmethod
    def _stop(relay: _Relay) -> None:
        if relay.process.poll() is None:
            relay.process.terminate()
        try:
            relay.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            relay.process.kill()
            relay.process.wait()


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the relay listens (it binds before it enters the namespace), without connecting."""
    deadline = time.monotonic() + 10
    while port_owner(port) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the relay to port {port} did not start: {tail}")
        time.sleep(0.05)
