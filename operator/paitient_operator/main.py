"""``paitient-operator``: run the operator against the current kubeconfig (or in-cluster).

Configuration comes from ``--config`` / ``$PAITIENT_OPERATOR_CONFIG`` (a YAML file) and
``PAITIENT_*`` environment variables; docs/configuration.md has every setting and its default.
With leader election (the default) it first waits for the operator's Lease, answering its
liveness endpoint as a standby, and runs kopf only while it holds the Lease.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import kopf
import prometheus_client

from paitient_common.kubeapi import Kube
from paitient_common.settings import load_or_exit
from paitient_operator import handlers  # noqa: F401 - registers kopf's handlers
from paitient_operator.bootstrap import ensure_system_namespace
from paitient_operator.config import OperatorCommand, OperatorConfig
from paitient_operator.election import elect
from paitient_operator.managed_store import adopt_store
from paitient_operator.metrics import set_leading
from paitient_operator.observed_metrics import ObservedCollector

PROG = "paitient-operator"


def main(argv: list[str] | None = None) -> int:
    command = load_or_exit(OperatorCommand, argv, prog=PROG, description=__doc__)
    # The configuration has no flags of its own: the command line was OperatorCommand's. Its
    # store settings are checked below, once the store's Secrets exist.
    bootstrap = load_or_exit(
        OperatorConfig, [], prog=PROG, file=command.config_file, startup_check=False
    )
    if command.kubeconfig:  # kopf's login and the Kubernetes clients read it from there
        os.environ["KUBECONFIG"] = command.kubeconfig
    logging.basicConfig(
        level=logging.DEBUG if command.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Every replica, before anything else: the system namespace (the Lease and the store's
    # Secrets live there), and the chart's store's password and certificate, which this pod's
    # own store settings name (the store and the front doors wait for them).
    kube = Kube.from_kubeconfig(pool_size=1)
    ensure_system_namespace(kube, bootstrap)
    adopt_store(kube, bootstrap, os.environ)
    config = load_or_exit(OperatorConfig, [], prog=PROG, file=command.config_file)
    if command.metrics_address:
        prometheus_client.REGISTRY.register(ObservedCollector())
        host, _, port = command.metrics_address.rpartition(":")
        prometheus_client.start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
    # Until kopf runs (and installs its own), SIGTERM and SIGINT end the wait for the Lease, and
    # kopf stops at once if one came while it was starting.
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    elector = None
    if config.leader_election.enabled:
        elector = elect(config, command.liveness, stopping)
        if elector is None:
            return 0
    else:
        set_leading(True)
    try:
        # standalone: no kopf peering objects; the Lease decides which replica runs (kopf's
        # peering would freeze every replica of one Deployment: they share a priority).
        kopf.run(
            standalone=True,
            clusterwide=True,
            liveness_endpoint=command.liveness,
            stop_flag=stopping,
            # config: loaded and checked above; stop_flag: set by the cleanup (see
            # handlers.stop_workers)
            memo=kopf.Memo(config=config, stop_flag=stopping),
        )
    finally:
        if elector is not None:
            elector.stop(release=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
