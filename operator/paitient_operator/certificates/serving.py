"""Each ModelDeployment's serving certificate: the Secret ``<name>-tls`` its gateway mounts.

Two issuers, one Secret name, so the pod never changes between them:

- ``operator``: the operator signs with its own CA and writes the Secret (owned by the
  ModelDeployment). It is re-issued when it is missing, unreadable, for other names, not signed
  by a CA still trusted, or within ``renewBefore`` of expiry; otherwise the live one is kept.
  The Secret's data changes in place, the kubelet updates the mounted files, and the gateway
  reloads them: no pod restart.
- ``cert-manager``: the operator writes a cert-manager ``Certificate`` (owned by the
  ModelDeployment) naming the configured issuer; cert-manager writes and renews the Secret.

Level-based: the decision is made from what the Secret holds and the clock, every reconcile,
and a renewal time in the status lets a timer come back when it is due.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography import x509 as cx509

from paitient_common.kubeapi import Obj
from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.metadata import common_labels, service_names, serving_secret_name
from paitient_operator.certificates import x509
from paitient_operator.config import TLSConfig

CERTIFICATE_LABEL: Final = "paitient.ai/certificate"
NOT_AFTER_ANNOTATION: Final = "paitient.ai/not-after"
RENEW_AFTER_ANNOTATION: Final = "paitient.ai/renew-after"
CERT_MANAGER_API_VERSION: Final = "cert-manager.io/v1"
OPERATOR_ISSUER: Final = "paitient-operator"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ServingCertificate:
    """What the status says about the certificate: where, until when, renewed from when."""

    secret_name: str
    issuer: str
    not_after: datetime | None = None
    renew_after: datetime | None = None
    ready: bool = True
    message: str = ""

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"secretName": self.secret_name, "issuer": self.issuer}
        if self.not_after is not None:
            out["notAfter"] = _time(self.not_after)
        if self.renew_after is not None:
            out["renewAfter"] = _time(self.renew_after)
        return out


def keypair_of(secret: Obj | None) -> x509.KeyPair | None:
    """The certificate and key a Secret holds, None if it holds no readable pair."""
    data = (secret or {}).get("data") or {}
    try:
        pair = x509.KeyPair(
            base64.b64decode(data.get("tls.crt", "")).decode(),
            base64.b64decode(data.get("tls.key", "")).decode(),
        )
        _ = pair.cert, pair.key
    except ValueError:
        return None
    return pair


def renewal_reason(
    pair: x509.KeyPair | None,
    names: Sequence[str],
    trusted: Sequence[cx509.Certificate],
    now: datetime,
    renew_before: timedelta,
) -> str | None:
    """Why the certificate must be (re-)issued, or None to keep it (pure)."""
    if pair is None:
        return "no certificate yet"
    cert = pair.cert
    if sorted(x509.names_of(cert)) != sorted(names):
        return "its names changed"
    if not x509.signed_by(cert, trusted):
        return "it is not signed by a trusted CA"
    if now >= cert.not_valid_after_utc:
        return "it has expired"  # e.g. the operator was down through the renewal window
    if now >= cert.not_valid_after_utc - renew_before:
        return "it expires soon"
    return None


def renew_after(cert: cx509.Certificate, renew_before: timedelta) -> datetime:
    return cert.not_valid_after_utc - renew_before


def serving_secret_reference(md: ModelDeployment) -> Obj:
    """Enough of the serving Secret to look it up in a cache: kind, name, namespace, label."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": serving_secret_name(md),
            "namespace": md.namespace,
            "labels": {CERTIFICATE_LABEL: "serving"},
        },
    }


def build_serving_secret(md: ModelDeployment, pair: x509.KeyPair, renew_before: timedelta) -> Obj:
    """The ``kubernetes.io/tls`` Secret the gateway mounts (not adopted yet)."""
    cert = pair.cert
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": serving_secret_name(md),
            "namespace": md.namespace,
            "labels": {**common_labels(md), CERTIFICATE_LABEL: "serving"},
            "annotations": {
                NOT_AFTER_ANNOTATION: _time(cert.not_valid_after_utc),
                RENEW_AFTER_ANNOTATION: _time(renew_after(cert, renew_before)),
            },
        },
        "data": {
            "tls.crt": base64.b64encode(pair.cert_pem.encode()).decode(),
            "tls.key": base64.b64encode(pair.key_pem.encode()).decode(),
        },
    }


def _duration(value: timedelta) -> str:
    """A Go duration (cert-manager's format), in whole seconds."""
    return f"{int(value.total_seconds())}s"


def build_certificate(md: ModelDeployment, config: TLSConfig) -> Obj:
    """The cert-manager Certificate asking for the same Secret (not adopted yet)."""
    cm = config.cert_manager
    return {
        "apiVersion": CERT_MANAGER_API_VERSION,
        "kind": "Certificate",
        "metadata": {
            "name": serving_secret_name(md),
            "namespace": md.namespace,
            "labels": common_labels(md),
        },
        "spec": {
            "secretName": serving_secret_name(md),
            "secretTemplate": {"labels": {**common_labels(md), CERTIFICATE_LABEL: "serving"}},
            "commonName": service_names(md)[0][:64],
            "dnsNames": service_names(md),
            "duration": _duration(config.certificate_lifetime),
            "renewBefore": _duration(config.renew_before),
            "usages": ["server auth", "digital signature"],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "issuerRef": {"name": cm.issuer_name, "kind": cm.issuer_kind, "group": cm.issuer_group},
        },
    }


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def certificate_state(
    md: ModelDeployment, live: Obj | None, config: TLSConfig
) -> ServingCertificate:
    """What cert-manager reports for the Certificate: Ready, until when, renewed when."""
    cm = config.cert_manager
    issuer = f"{cm.issuer_kind}/{cm.issuer_name}"
    status = (live or {}).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return ServingCertificate(
        secret_name=serving_secret_name(md),
        issuer=issuer,
        not_after=_parse_time(status.get("notAfter")),
        renew_after=_parse_time(status.get("renewalTime")),
        ready=bool(ready and ready.get("status") == "True"),
        message=str((ready or {}).get("message") or f"waiting for cert-manager ({issuer})"),
    )
