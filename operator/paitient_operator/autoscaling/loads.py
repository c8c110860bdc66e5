"""Each replica's load, read from its gateway's ``GET /healthz/load`` (the gateway port, TLS
verified against the gateways' CA bundle and the Service's name, as the front door connects):
the one load report every reader shares (``paitient_common.gateway_load``).

Where a replica's gateway is: in a cluster, its pod's address (``GatewayAddresses.pods``); on
the local data plane, which runs gateways on 127.0.0.1, the routes file it writes (``file:``),
as the front door reads it. A gateway that does not answer gives a load of NaN: the decision
then never removes a replica it could not read.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import ssl
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paitient_common.gateway_load import LOAD_PATH, GatewayLoad
from paitient_common.routes_file import RoutesFile, pod_urls
from paitient_operator.autoscaling.decision import ReplicaLoad

log = logging.getLogger(__name__)


def replica_load(pod: str, report: GatewayLoad | None) -> ReplicaLoad:
    """A gateway's load report as the load of its replica; no report, an unknown load (pure)."""
    if report is None:
        return ReplicaLoad(pod)
    return ReplicaLoad(
        pod,
        in_flight=float(report.in_flight),
        running=math.nan if report.running is None else report.running,
        waiting=math.nan if report.waiting is None else report.waiting,
        draining=report.draining,
    )


@dataclass(frozen=True)
class Endpoint:
    """Where one replica's gateway answers: host, port, the name its certificate carries."""

    pod: str
    host: str
    port: int
    server_name: str


def serving_pods(pods: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """The pods whose gateway can be read (Ready, with an address, not terminating), and how
    many others are still starting (scheduled, not Ready, not terminating): a replica that
    loads its model carries no load yet but must not be removed for it."""
    ready, starting = [], 0
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            continue
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        if conditions.get("Ready") == "True" and status.get("podIP"):
            ready.append(pod)
        elif conditions.get("PodScheduled") == "True" and not _crashing(status):
            starting += 1
    return ready, starting


def _crashing(status: Mapping[str, Any]) -> bool:
    return any(
        (s.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
        for s in status.get("containerStatuses") or []
    )


@dataclass
class GatewayAddresses:
    """``pods``: the pod's own address; ``file:<path>``: the local data plane's routes file
    (``paitient_common.routes_file``: each pod's URL on loopback), re-read when changed."""

    source: str = "pods"
    port: int = 8443
    _file: RoutesFile | None = None

    def endpoints(
        self, namespace: str, name: str, pods: Sequence[Mapping[str, Any]]
    ) -> list[Endpoint]:
        server_name = f"{name}.{namespace}.svc"
        if not self.source.startswith("file:"):
            return [
                Endpoint(p["metadata"]["name"], p["status"]["podIP"], self.port, server_name)
                for p in pods
            ]
        wanted = {p["metadata"]["name"] for p in pods}
        if self._file is None:
            self._file = RoutesFile(Path(self.source.removeprefix("file:")))
        entry = (self._file.table() or {}).get(f"{namespace}/{name}") or {}
        found = []
        for pod, url in pod_urls(entry).items():
            host, _, port = url.split("://", 1)[-1].rpartition(":")
            if pod in wanted and host and port.isdigit():
                name_checked = str(entry.get("serverName") or server_name)
                found.append(Endpoint(pod, host, int(port), name_checked))
        return found


@dataclass
class LoadReader:
    """Reads every replica's gateway at once (a thread each, ``timeout`` bound)."""

    timeout: float = 2.0
    workers: int = 16
    _pool: ThreadPoolExecutor | None = None

    def read(self, endpoints: Sequence[Endpoint], context: ssl.SSLContext) -> list[ReplicaLoad]:
        if not endpoints:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="gateway-load")
        return list(self._pool.map(lambda e: self._one(e, context), endpoints))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _one(self, endpoint: Endpoint, context: ssl.SSLContext) -> ReplicaLoad:
        connection = _VerifiedConnection(
            endpoint.host, endpoint.port, endpoint.server_name, context, self.timeout
        )
        try:
            connection.request("GET", LOAD_PATH)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                return ReplicaLoad(endpoint.pod)
            return replica_load(endpoint.pod, GatewayLoad.from_json(json.loads(body)))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.info("gateway of %s did not give its load: %s", endpoint.pod, type(exc).__name__)
            return ReplicaLoad(endpoint.pod)
        finally:
            connection.close()


class _VerifiedConnection(http.client.HTTPSConnection):
    """HTTPS to an address whose certificate names a host (the Service), not the address."""

    def __init__(
        self, host: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._tls_context = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls_context.wrap_socket(self.sock, server_hostname=self._server_name)
