"""``paitient-operator``: run the operator against the current kubeconfig (or in-cluster).

Configuration comes from ``--config`` / ``$PAITIENT_OPERATOR_CONFIG`` (a YAML file) and
``PAITIENT_*`` environment variables; docs/configuration.md has every setting and its default.
"""

from __future__ import annotations

import logging
import os
import sys

import kopf
import prometheus_client

from paitient_common.settings import load_or_exit
from paitient_operator import handlers
from paitient_operator.config import OperatorCommand, OperatorConfig

PROG = "paitient-operator"


def main(argv: list[str] | None = None) -> int:
    command = load_or_exit(OperatorCommand, argv, prog=PROG, description=__doc__)
    # The configuration has no flags of its own: the command line was OperatorCommand's.
    config = load_or_exit(OperatorConfig, [], prog=PROG, file=command.config_file)
    if command.kubeconfig:  # kopf's login and the Kubernetes clients read it from there
        os.environ["KUBECONFIG"] = command.kubeconfig
    logging.basicConfig(
        level=logging.DEBUG if command.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handlers.register_certificate_handlers(config.tls)
    if command.metrics_address:
        host, _, port = command.metrics_address.rpartition(":")
        prometheus_client.start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
    # standalone: one operator per cluster, no peering objects (the Helm chart runs one replica).
    kopf.run(
        standalone=True,
        clusterwide=True,
        liveness_endpoint=command.liveness,
        memo=kopf.Memo(config=config),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
