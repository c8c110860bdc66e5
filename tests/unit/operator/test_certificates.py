"""The operator's CA and serving certificates as data: what is signed, what is kept, what the
Secret and the cert-manager Certificate look like."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509 as cx509
from cryptography.x509.oid import ExtendedKeyUsageOID

from paitient_operator.certificates import serving, x509
from paitient_operator.certificates.authority import (
    build_ca_bundle_configmap,
    build_ca_secret,
    parse_authority,
    rotate,
)
from paitient_operator.config import TLSConfig
from tests.unit.operator.factories import make_md

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MD = make_md("huatuo").namespace("tenant-a").obj()
NAMES = ["huatuo.tenant-a.svc", "huatuo.tenant-a.svc.cluster.local"]


@pytest.fixture(scope="module")
def ca() -> x509.KeyPair:
    return x509.new_authority("test CA", timedelta(days=365), NOW)


def test_the_ca_may_sign_leaves_only(ca: x509.KeyPair) -> None:
    cert = ca.cert
    constraints = cert.extensions.get_extension_for_class(cx509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(cx509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert cert.issuer == cert.subject


def test_a_serving_certificate_names_the_service_and_never_outlives_its_ca(
    ca: x509.KeyPair,
) -> None:
    leaf = x509.issue(ca, NAMES, timedelta(days=30), NOW)
    cert = leaf.cert
    assert x509.names_of(cert) == NAMES
    assert x509.signed_by(cert, [ca.cert])
    assert cert.extensions.get_extension_for_class(cx509.BasicConstraints).value.ca is False
    eku = cert.extensions.get_extension_for_class(cx509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_before_utc < NOW  # a lagging clock elsewhere still accepts it
    assert cert.not_valid_after_utc == NOW + timedelta(days=30)
    late = x509.issue(ca, NAMES, timedelta(days=30), NOW + timedelta(days=350))
    assert late.cert.not_valid_after_utc == ca.cert.not_valid_after_utc
    assert x509.names_of(
        x509.issue(ca, ["127.0.0.1", "localhost"], timedelta(days=1), NOW).cert
    ) == [
        "localhost",
        "127.0.0.1",
    ]
    with pytest.raises(ValueError, match="at least one name"):
        x509.issue(ca, [], timedelta(days=1), NOW)


@pytest.mark.parametrize(
    ("names", "issued_by_other", "age", "reason"),
    [
        (NAMES, False, timedelta(days=1), None),
        (NAMES, False, timedelta(days=21), "it expires soon"),
        (NAMES, False, timedelta(days=31), "it has expired"),
        (["old.tenant-a.svc"], False, timedelta(days=1), "its names changed"),
        (NAMES, True, timedelta(days=1), "it is not signed by a trusted CA"),
    ],
)
def test_a_certificate_is_kept_until_a_reason_to_replace_it(
    ca: x509.KeyPair,
    names: list[str],
    issued_by_other: bool,
    age: timedelta,
    reason: str | None,
) -> None:
    signer = x509.new_authority("other", timedelta(days=365), NOW) if issued_by_other else ca
    pair = x509.issue(signer, names, timedelta(days=30), NOW)
    got = serving.renewal_reason(pair, NAMES, [ca.cert], NOW + age, timedelta(days=10))
    assert got == reason
    assert serving.renewal_reason(None, NAMES, [ca.cert], NOW, timedelta(days=10)) == (
        "no certificate yet"
    )


def test_the_serving_secret_holds_the_pair_and_says_when_it_is_renewed(ca: x509.KeyPair) -> None:
    pair = x509.issue(ca, NAMES, timedelta(days=30), NOW)
    secret = serving.build_serving_secret(MD, pair, timedelta(days=10))
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"] == "huatuo-tls"
    assert secret["metadata"]["namespace"] == "tenant-a"
    assert secret["metadata"]["labels"][serving.CERTIFICATE_LABEL] == "serving"
    assert secret["metadata"]["annotations"] == {
        serving.NOT_AFTER_ANNOTATION: "2026-05-31T12:00:00Z",
        serving.RENEW_AFTER_ANNOTATION: "2026-05-21T12:00:00Z",
    }
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == pair.cert_pem
    assert serving.keypair_of(secret) == pair
    assert serving.keypair_of({"data": {"tls.crt": "bm90IGEgY2VydA=="}}) is None
    assert serving.keypair_of(None) is None


def test_the_cert_manager_certificate_asks_for_the_same_secret() -> None:
    config = TLSConfig(
        issuer="cert-manager",
        certificate_lifetime=timedelta(days=30),
        renew_before=timedelta(days=10),
        cert_manager={"issuerName": "clinic-ca", "caBundle": "-----BEGIN CERTIFICATE-----"},  # type: ignore[arg-type]
    )
    cert = serving.build_certificate(MD, config)
    assert cert["apiVersion"] == "cert-manager.io/v1" and cert["kind"] == "Certificate"
    spec = cert["spec"]
    assert spec["secretName"] == "huatuo-tls" == cert["metadata"]["name"]
    assert spec["dnsNames"] == NAMES
    assert spec["duration"] == "2592000s" and spec["renewBefore"] == "864000s"
    assert spec["issuerRef"] == {
        "name": "clinic-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert spec["secretTemplate"]["labels"][serving.CERTIFICATE_LABEL] == "serving"

    pending = serving.certificate_state(MD, cert, config)
    assert not pending.ready and "clinic-ca" in pending.message
    issued = {
        **cert,
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "message": "Certificate is up to date"}
            ],
            "notAfter": "2026-05-31T12:00:00Z",
            "renewalTime": "2026-05-21T12:00:00Z",
        },
    }
    state = serving.certificate_state(MD, issued, config)
    assert state.ready and state.status() == {
        "secretName": "huatuo-tls",
        "issuer": "ClusterIssuer/clinic-ca",
        "notAfter": "2026-05-31T12:00:00Z",
        "renewAfter": "2026-05-21T12:00:00Z",
    }


def test_a_rotated_ca_keeps_trusting_the_previous_one_until_it_expires() -> None:
    config = TLSConfig(ca_lifetime=timedelta(days=100), ca_renew_before=timedelta(days=30))
    first = rotate(None, config, NOW)
    assert first.trusted == (first.signer.cert,)
    assert not first.due_for_rotation(NOW + timedelta(days=69), config.ca_renew_before)
    assert first.due_for_rotation(NOW + timedelta(days=70), config.ca_renew_before)

    secret = build_ca_secret("paitient-system", first)
    assert secret["type"] == "kubernetes.io/tls" and "resourceVersion" not in secret["metadata"]
    secret["metadata"]["resourceVersion"] = "42"
    read = parse_authority(secret)
    assert read.signer == first.signer and read.resource_version == "42"

    second = rotate(read, config, NOW + timedelta(days=70))
    assert second.signer != first.signer
    assert second.trusted == (second.signer.cert, first.signer.cert)
    leaf = x509.issue(first.signer, NAMES, timedelta(days=20), NOW + timedelta(days=69))
    assert x509.signed_by(leaf.cert, second.trusted)  # still trusted after the rotation
    third = rotate(second, config, NOW + timedelta(days=140))  # the first one has expired
    assert third.trusted == (third.signer.cert, second.signer.cert)

    bundle = build_ca_bundle_configmap("paitient-system", second.bundle_pem)["data"]["ca.crt"]
    assert x509.load_certificates(bundle) == list(second.trusted)


def test_a_secret_without_a_usable_ca_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_authority({"data": {"tls.crt": base64.b64encode(b"junk").decode()}})
