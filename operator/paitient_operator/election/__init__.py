"""Leader election among operator replicas: only the holder of a ``coordination.k8s.io`` Lease
runs kopf's handlers; the others stand by, Ready, and take over when it goes (docs/operator.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Final

from paitient_common.kubeapi import Kube
from paitient_operator.config import OperatorConfig
from paitient_operator.election.elector import LeaderElector
from paitient_operator.election.standby import StandbyProbe

# The exit status of a leader that lost its Lease (the kubelet restarts it as a standby).
LOST_LEASE_EXIT_CODE: Final = 3


def replica_identity() -> str:
    """The pod's name (its host name in a cluster) and a random part: a restarted container in
    the same pod is a new candidate, never mistaken for the old holder."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _exit_at_once() -> None:
    logging.shutdown()
    os._exit(LOST_LEASE_EXIT_CODE)


def elect(
    config: OperatorConfig, liveness: str | None, stopping: threading.Event
) -> LeaderElector | None:
    """Block until this replica leads: the elector (keep it renewing; ``stop(release=True)`` at
    exit). None when ``stopping`` was set first (SIGTERM while standing by). Meanwhile the
    liveness endpoint answers for the standby."""
    settings = config.leader_election
    kube = Kube.from_kubeconfig(pool_size=2, timeout=settings.retry_period_seconds)
    elector = LeaderElector(
        kube, config.system_namespace, settings, replica_identity(), _exit_at_once
    )
    probe = StandbyProbe(liveness, lambda: elector.holder).start() if liveness else None
    elector.start()
    try:
        while not stopping.is_set():
            if elector.leading.wait(0.2):
                return elector
        elector.stop(release=True)
        return None
    finally:
        if probe is not None:
            probe.close()


__all__ = ["LOST_LEASE_EXIT_CODE", "LeaderElector", "elect", "replica_identity"]
