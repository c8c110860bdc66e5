"""pytest fixtures for the local control plane.

``kubeconfig`` (session): the path of an admin kubeconfig. It uses ``$PAITIENT_TEST_KUBECONFIG``
when set (any cluster, e.g. kind), reuses a healthy local cluster, or starts one and stops it
again at the end of the session, also when tests fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import LocalCluster


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    given = os.environ.get("PAITIENT_TEST_KUBECONFIG")
    if given:
        yield Path(given)
        return
    cluster = LocalCluster(log=_log)
    reused = cluster.is_healthy()
    path = cluster.up()
    try:
        yield path
    finally:
        if not reused:
            cluster.down()
