"""The gateway's serving certificate for an image test, as the operator issues it and the kubelet
mounts it, and an HTTPS client that verifies it the way the front door does.

The operator's rendered pod mounts the Secret ``<md>-tls`` (volume ``serving-tls``) into the
gateway and points ``PAITIENT_TLS_CERT_FILE`` / ``_KEY_FILE`` at it. Here the operator's own
certificate code makes that Secret (a CA as ``rotate`` makes it, a certificate for the Service's
names as the issuer signs it, the Secret as ``build_serving_secret`` renders it), and its files
are laid out in a host directory the way the kubelet writes a Secret volume: ``..data`` swapped
in, the volume's ``defaultMode``, group-owned by the pod's ``fsGroup``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_common.tls import client_context
from paitient_localcluster.simulated.volumes import secret_files, write_atomically
from paitient_operator.builders.deployment import VOLUME_SERVING_TLS
from paitient_operator.builders.metadata import service_names
from paitient_operator.certificates import authority, serving, x509
from paitient_operator.config import OperatorConfig
from tests.integration.gateway_tls import Gateway


@dataclass(frozen=True)
class ServingVolume:
    """The host directory standing in for the ``serving-tls`` volume, and the CA it trusts."""

    directory: Path
    ca_bundle_pem: str
    server_name: str  # the Service name the certificate is for, as the front door verifies it

    def host_paths(self) -> dict[str, str]:
        """``pod_flags``' mapping for the volume the pod spec names."""
        return {VOLUME_SERVING_TLS: str(self.directory)}

    def client(self, port: int, timeout: float = 30) -> Gateway:
        """HTTPS to 127.0.0.1:``port``, trusting only the CA and checking the Service name."""
        return Gateway(
            f"https://127.0.0.1:{port}", self.server_name, client_context(self.ca_bundle_pem),
            timeout=timeout,
        )  # fmt: skip


def serving_volume(
    md: ModelDeployment, config: OperatorConfig, pod: dict[str, Any], directory: Path
) -> ServingVolume:
    """The Secret ``<md>-tls`` the operator would write for ``md``, mounted as ``pod`` asks."""
    now = datetime.now(UTC)
    ca = authority.rotate(None, config.tls, now)
    names = service_names(md)
    pair = x509.issue(ca.signer, names, config.tls.certificate_lifetime, now)
    secret = serving.build_serving_secret(md, pair, config.tls.renew_before)
    mount_secret(secret, VOLUME_SERVING_TLS, pod, directory)
    return ServingVolume(directory, ca.bundle_pem, names[0])


def mount_secret(
    secret: dict[str, Any], volume_name: str, pod: dict[str, Any], directory: Path
) -> Path:
    """``directory`` laid out as the kubelet writes ``pod``'s Secret volume ``volume_name`` of
    ``secret``: its ``items`` (or every key), its ``defaultMode``, group ``fsGroup``."""
    [volume] = [v for v in pod["volumes"] if v["name"] == volume_name]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    files = secret_files(secret)
    if items := volume["secret"].get("items"):
        files = {item["path"]: files[item["key"]] for item in items}
    write_atomically(directory, files, volume["secret"]["defaultMode"])
    group = int(pod["securityContext"]["fsGroup"])
    for path in (directory, *directory.rglob("*")):  # the kubelet's fsGroup ownership
        if not path.is_symlink():
            os.chown(path, 0, group)
    return directory
