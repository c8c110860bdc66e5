"""The chart installed on the session's cluster as `make up` installs it (operator and front door
as pods on the real node, the front door on host loopback through a relay), with the session's
own operator paused meanwhile (two operators would fight); removed afterwards, the cluster kept.
Shared by the tests and benchmarks that need the product's own pods: their operator reads the
gateways by pod address, their front door reaches gateways by their Services."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from paitient_common.kubeapi import Kube
from paitient_localcluster.host.processes import Managed, free_port
from paitient_localcluster.stack import lifecycle
from paitient_localcluster.stack.chart import helm
from tests.integration.operator_process import OperatorProcess


@dataclass(frozen=True)
class Release:
    base_url: str  # https://127.0.0.1:<port>/v1
    ca_bundle: Path  # the front door's CA

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


@contextlib.contextmanager
def installed_release(
    kubeconfig: Path, kube: Kube, values: Sequence[str] = ()
) -> Iterator[Release]:
    """``lifecycle.up(values)`` on a free host port; everything it added removed afterwards."""
    relay = Managed(lifecycle.FRONT_DOOR_RELAY, kubeconfig.parent)
    if relay.read_pid() is not None:
        raise RuntimeError("`make up`'s release runs on this cluster already")
    port, lifecycle.API_PORT = lifecycle.API_PORT, free_port()
    with OperatorProcess.others_paused():
        try:
            base_url, ca_bundle, _ = lifecycle.up(values)
            yield Release(base_url, ca_bundle)
        finally:
            relay.stop()
            helm(kubeconfig, "uninstall", lifecycle.RELEASE,
                 "--namespace", lifecycle.SYSTEM_NAMESPACE, "--wait", "--ignore-not-found")  # fmt: skip
            kube.delete("v1", "Secret", lifecycle.TLS_SECRET, namespace=lifecycle.SYSTEM_NAMESPACE)
            lifecycle.API_PORT = port
