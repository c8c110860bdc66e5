"""Kubeconfig documents for the local cluster's identities (pure: data in, dict out)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
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


def write_kubeconfig(path: Path, document: Mapping[str, Any]) -> Path:
    """Write ``document`` as YAML with mode 0600 from the first byte on, replacing ``path``
    atomically (a reader never sees half a file, nor a credential under a wider mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(yaml.safe_dump(dict(document), sort_keys=False))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
