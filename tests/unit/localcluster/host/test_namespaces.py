"""The names of a cluster's namespaces."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.host.namespaces import cluster_name


def test_namespace_names_differ_per_checkout_and_port_base() -> None:
    a = cluster_name(Path("/w/a/.local/cluster"), 21400)
    assert a == cluster_name(Path("/w/a/.local/cluster"), 21400)
    assert a.startswith("paitient-21400-")
    assert a != cluster_name(Path("/w/b/.local/cluster"), 21400)
    assert a != cluster_name(Path("/w/a/.local/cluster"), 22400)
