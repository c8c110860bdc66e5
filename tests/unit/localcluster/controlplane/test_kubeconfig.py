"""Kubeconfig documents for the cluster's identities."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.controlplane.kubeconfig import build_kubeconfig


def test_kubeconfig_points_at_the_server_with_the_given_identity() -> None:
    doc = build_kubeconfig(
        "https://127.0.0.1:1", Path("/p/ca.crt"), Path("/p/a.crt"), Path("/p/a.key")
    )
    assert doc["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:1",
        "certificate-authority": "/p/ca.crt",
    }
    assert doc["users"][0]["user"]["client-key"] == "/p/a.key"
    assert doc["current-context"] == doc["contexts"][0]["name"]
