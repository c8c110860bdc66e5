"""The front door's certificate from the operator's CA: issued once, kept, renewed when due,
re-issued when its names change; the Secret holds the CA bundle clients trust."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from paitient_common.kubeapi import Kube
from paitient_operator.certificates import x509
from paitient_operator.certificates.authority import AuthorityStore
from paitient_operator.certificates.front_door import FrontDoorCertificate
from paitient_operator.config import OperatorConfig
from paitient_operator.observed_metrics import OBSERVED
from tests.unit.operator.memory_kube import MemoryKube

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NAMES = ["paitient-api", "paitient-api.paitient-system.svc", "api.clinic.example"]
SECRET = ("v1", "Secret", "paitient-api-tls")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _config(names: list[str] = NAMES) -> OperatorConfig:
    return OperatorConfig.model_validate(
        {"frontDoorCertificate": {"secretName": "paitient-api-tls", "names": names}}
    )


def _issuer(kube: MemoryKube, config: OperatorConfig, clock: Clock) -> FrontDoorCertificate:
    api = cast(Kube, kube)
    store = AuthorityStore(api, config.ca_namespace, config.system_namespace, config.tls, clock)
    return FrontDoorCertificate(api, config, store, clock)


def _pair(secret: dict[str, object]) -> x509.KeyPair:
    data = cast(dict[str, str], secret["data"])
    decode = lambda key: base64.b64decode(data[key]).decode()  # noqa: E731
    return x509.KeyPair(decode("tls.crt"), decode("tls.key"))


def test_issued_for_its_names_with_the_bundle_clients_trust_then_kept() -> None:
    kube, clock, config = MemoryKube(), Clock(), _config()
    issuer = _issuer(kube, config, clock)
    secret = issuer.sync()
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["namespace"] == "paitient-system"
    cert = _pair(secret).cert
    assert sorted(x509.names_of(cert)) == sorted(NAMES)
    bundle = kube.get("v1", "ConfigMap", "paitient-ca-bundle", namespace="paitient-system")
    assert bundle is not None
    ca_in_secret = base64.b64decode(secret["data"]["ca.crt"]).decode()
    assert ca_in_secret == bundle["data"]["ca.crt"]
    assert x509.signed_by(cert, x509.load_certificates(ca_in_secret))
    assert cert.not_valid_after_utc == START + timedelta(days=30)
    assert OBSERVED.renewals["front-door"] == START + timedelta(days=20)
    writes = len(kube.writes)
    clock.now = START + timedelta(days=19)
    kept = issuer.sync()
    assert kept is not None and _pair(kept).cert_pem == _pair(secret).cert_pem
    assert len(kube.writes) == writes, "nothing written while the certificate will do"


def test_renewed_within_renew_before_of_expiry() -> None:
    kube, clock, config = MemoryKube(), Clock(), _config()
    issuer = _issuer(kube, config, clock)
    first = _pair(issuer.sync() or {}).cert
    clock.now = START + timedelta(days=21)
    renewed = _pair(issuer.sync() or {}).cert
    assert renewed != first
    assert renewed.not_valid_after_utc == clock.now + timedelta(days=30)
    live = kube.get(*SECRET, namespace="paitient-system")
    assert live is not None and _pair(live).cert == renewed


def test_reissued_when_the_names_change() -> None:
    kube, clock = MemoryKube(), Clock()
    _issuer(kube, _config(), clock).sync()
    again = _issuer(kube, _config(["paitient-api.paitient-system.svc"]), clock).sync()
    assert x509.names_of(_pair(again or {}).cert) == ["paitient-api.paitient-system.svc"]


def test_nothing_is_issued_unless_configured() -> None:
    kube, clock = MemoryKube(), Clock()
    assert _issuer(kube, OperatorConfig(), clock).sync() is None
    assert kube.writes == []


def test_configuration_rules() -> None:
    with pytest.raises(ValueError, match="names is required"):
        OperatorConfig.model_validate({"frontDoorCertificate": {"secretName": "x"}})
    with pytest.raises(ValueError, match=r"needs tls\.issuer operator"):
        OperatorConfig.model_validate(
            {
                "frontDoorCertificate": {"secretName": "x", "names": ["a"]},
                "tls": {
                    "issuer": "cert-manager",
                    "certManager": {
                        "issuerName": "ca",
                        "caBundle": "-----BEGIN CERTIFICATE-----\n",
                    },
                },
            }
        )
