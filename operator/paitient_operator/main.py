"""``paitient-operator``: run the operator against the current kubeconfig (or in-cluster).

Configuration comes from ``$PAITIENT_OPERATOR_CONFIG`` (a YAML file) and ``PAITIENT_*``
environment variables; see docs/operator.md for every setting and its default. With leader
election (the default) it first waits for the operator's Lease, answering its liveness endpoint
as a standby, and runs kopf only while it holds the Lease.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

import kopf
import prometheus_client

from paitient_common.kubeapi import Kube
from paitient_operator import handlers
from paitient_operator.bootstrap import ensure_system_namespace
from paitient_operator.config import load_config
from paitient_operator.election import elect
from paitient_operator.managed_store import adopt_store
from paitient_operator.metrics import LEADER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paitient-operator", description=__doc__)
    parser.add_argument(
        "--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, then in-cluster)"
    )
    parser.add_argument("--config", help="operator configuration file ($PAITIENT_OPERATOR_CONFIG)")
    parser.add_argument(
        "--liveness", default=None, help="serve liveness, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument(
        "--metrics-address",
        default=None,
        help="serve Prometheus metrics at HOST:PORT (e.g. 0.0.0.0:8081); off when unset",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    if args.config:
        os.environ["PAITIENT_OPERATOR_CONFIG"] = args.config
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Every replica, before anything else: the system namespace (the Lease and the store's
    # Secrets live there), and the chart's store's password and certificate, which this pod's
    # own store settings name (the store and the front doors wait for them).
    bootstrap = load_config(check_store=False)
    kube = Kube.from_kubeconfig(pool_size=1)
    ensure_system_namespace(kube, bootstrap)
    adopt_store(kube, bootstrap, os.environ)
    config = load_config()
    handlers.register_certificate_handlers(config.tls)
    if args.metrics_address:
        host, _, port = args.metrics_address.rpartition(":")
        prometheus_client.start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
    # Until kopf runs (and installs its own), SIGTERM and SIGINT end the wait for the Lease, and
    # kopf stops at once if one came while it was starting.
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    elector = None
    if config.leader_election.enabled:
        elector = elect(config, args.liveness, stopping)
        if elector is None:
            return 0
    else:
        LEADER.set(1)
    try:
        # standalone: no kopf peering objects; the Lease decides which replica runs (kopf's
        # peering would freeze every replica of one Deployment: they share a priority).
        kopf.run(
            standalone=True,
            clusterwide=True,
            liveness_endpoint=args.liveness,
            stop_flag=stopping,
            memo=kopf.Memo(stop_flag=stopping),  # set by the cleanup: see handlers.stop_workers
        )
    finally:
        if elector is not None:
            elector.stop(release=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
