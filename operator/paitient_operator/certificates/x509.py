"""X.509 for the operator's own small CA (pure: bytes and times in, PEM out).

Keys are ECDSA P-256: small, fast to sign and to handshake with, accepted everywhere TLS 1.2
is. Certificates carry what strict verifiers insist on (Python 3.13's ``VERIFY_X509_STRICT``,
Go's crypto/x509): critical basic constraints and key usage, subject and authority key
identifiers, and names only in the subject alternative name extension.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Clocks of the hosts that verify may lag the operator's: a certificate valid "from now" would
# be refused there for a few seconds.
CLOCK_SKEW = timedelta(minutes=5)
ORGANIZATION = "PaiTIENT"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: str
    key_pem: str

    @cached_property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    @cached_property
    def key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key is not an ECDSA key")
        return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    # ECDSA keys sign (handshakes, and certificates for a CA); they never encipher.
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def new_authority(common_name: str, lifetime: timedelta, now: datetime) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def _san(names: Sequence[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def issue(
    authority: KeyPair,
    names: Sequence[str],
    lifetime: timedelta,
    now: datetime,
    *,
    client: bool = False,
) -> KeyPair:
    """A leaf certificate for ``names`` (DNS names or IP addresses) signed by ``authority``,
    valid for ``lifetime`` but never past the authority's own expiry. ``client=True`` also
    allows it as a TLS client certificate."""
    if not names:
        raise ValueError("a certificate needs at least one name")
    key = ec.generate_private_key(ec.SECP256R1())
    ca = authority.cert
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + lifetime, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(authority.key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def load_certificates(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (none if it holds none); ValueError if malformed."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return []
    return list(x509.load_pem_x509_certificates(pem.encode()))


def bundle_pem(certs: Iterable[x509.Certificate]) -> str:
    return "".join(_cert_pem(c) for c in certs)


def names_of(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses of a certificate's subject alternative names."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return [*dns, *ips]


def signed_by(cert: x509.Certificate, authorities: Iterable[x509.Certificate]) -> bool:
    """True if one of ``authorities`` issued ``cert`` (its signature checks out)."""
    for ca in authorities:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex: names a certificate in logs and status."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
