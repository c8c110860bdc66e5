"""``paitient-operator``: run the operator against the current kubeconfig (or in-cluster).

Configuration comes from ``$PAITIENT_OPERATOR_CONFIG`` (a YAML file) and ``PAITIENT_*``
environment variables; see docs/operator.md for every setting and its default.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import kopf
import prometheus_client

from paitient_operator import handlers
from paitient_operator.config import load_config
from paitient_operator.observed_metrics import ObservedCollector


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
    handlers.register_certificate_handlers(load_config().tls)
    if args.metrics_address:
        prometheus_client.REGISTRY.register(ObservedCollector())
        host, _, port = args.metrics_address.rpartition(":")
        prometheus_client.start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
    # standalone: one operator per cluster, no peering objects (the Helm chart runs one replica).
    kopf.run(standalone=True, clusterwide=True, liveness_endpoint=args.liveness)
    return 0


if __name__ == "__main__":
    sys.exit(main())
