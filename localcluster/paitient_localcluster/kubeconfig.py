"""Kubeconfig documents for the local cluster's identities (pure: data in, dict out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONTEXT = "paitient-local"


def build_kubeconfig(
    server: str, ca_cert: Path, client_cert: Path, client_key: Path
) -> dict[str, Any]:
    """A kubeconfig with one cluster, one user and one current context, all named paitient-local."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority": str(ca_cert)},
            }
        ],
        "users": [
            {
                "name": CONTEXT,
                "user": {"client-certificate": str(client_cert), "client-key": str(client_key)},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        "current-context": CONTEXT,
    }


def write_kubeconfig(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path
