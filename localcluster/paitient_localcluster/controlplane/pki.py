"""Certificates and keys of the local control plane: one CA, a serving certificate, client
identities and the service-account signing key.

Each component gets its own identity (as kubeadm does), so RBAC is exercised the way it is on a
real cluster; the admin identity is in group ``system:masters``, as envtest does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..addresses import API_SERVICE_IP, NODE_IP

NODE_NAME = "cpu-node-0"  # the real node
# Serving certificates: file stem -> (common name, DNS names, IP addresses). The API server is
# reached on loopback, at its Service address and at the node address it advertises; the
# kubelet at the node address (the API server verifies it for logs, exec, port-forward).
SERVERS = {
    "apiserver": (
        "kube-apiserver",
        ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
         "kubernetes.default.svc.cluster.local"),
        ("127.0.0.1", API_SERVICE_IP, NODE_IP),
    ),
    "kubelet": (f"system:node:{NODE_NAME}", (NODE_NAME,), (NODE_IP,)),
}  # fmt: skip
CLIENTS = {
    # file stem: (common name, organisation)
    "admin": ("paitient-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("paitient-kwok", "system:masters"),
    # The operator runs with an identity of its own so the audit log tells its requests apart;
    # the Helm chart gives it least-privilege RBAC, the local cluster simply trusts it.
    "operator": ("paitient-operator", "system:masters"),
    # The real node: kubelet under the Node authorizer, kube-proxy under its built-in role
    # (system:node-proxier), kube-router under the role nodeconfig.kube_router_rbac grants.
    "node": (f"system:node:{NODE_NAME}", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", None),
    "kube-router": ("paitient-kube-router", None),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
}
_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class Pki:
    """Paths of everything the control plane reads from ``directory``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.serving_cert_of("apiserver")

    @property
    def serving_key(self) -> Path:
        return self.serving_key_of("apiserver")

    def serving_cert_of(self, server: str) -> Path:
        return self.directory / f"{server}.crt"

    def serving_key_of(self, server: str) -> Path:
        return self.directory / f"{server}.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    def client_cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def exists(self) -> bool:
        files = [self.ca_cert, self.service_account_key]
        files += [self.client_cert(n) for n in CLIENTS]
        return all(f.is_file() for f in files) and all(
            _serves(self.serving_cert_of(stem), names, ips)
            for stem, (_, names, ips) in SERVERS.items()
        )


def ensure_pki(directory: Path) -> Pki:
    """Create what is missing of the PKI in ``directory``.

    An existing CA is kept (a running cluster keeps trusting its certificates); identities added
    to ``CLIENTS`` since it was made are issued by it, and a serving certificate whose names
    differ from ``SERVERS`` is issued again.
    """
    pki = Pki(directory)
    if pki.exists():
        return pki
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    if pki.ca_cert.is_file() and pki.ca_key.is_file() and pki.service_account_key.is_file():
        ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        loaded = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key, ca_name = loaded, ca_cert.subject
    else:
        ca_key, ca_name = _new_ca(pki)
        # Service-account tokens are signed with RSA (RS256 is what every verifier accepts).
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pki.service_account_key.write_bytes(_private_pem(sa_key))
        pki.service_account_key.chmod(0o600)
    for stem, (cn, names, ips) in SERVERS.items():
        if not _serves(pki.serving_cert_of(stem), names, ips):
            _new_serving_cert(pki, stem, cn, names, ips, ca_key, ca_name)
    for stem, (cn, org) in CLIENTS.items():
        if not pki.client_cert(stem).is_file():
            _new_client_cert(pki, stem, _name(cn, org), ca_key, ca_name)
    return pki


def _serves(cert_path: Path, names: tuple[str, ...], ips: tuple[str, ...]) -> bool:
    """The certificate exists and names exactly these DNS names and addresses."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return set(sans.get_values_for_type(x509.DNSName)) == set(names) and {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)
    } == set(ips)


def _new_ca(pki: Pki) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    ca_key = _ec_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paitient-localcluster-ca")])
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    ca_cert = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.ca_cert, pki.ca_key, ca_cert, ca_key)
    return ca_key, ca_name


def _new_serving_cert(
    pki: Pki,
    stem: str,
    common_name: str,
    names: tuple[str, ...],
    ips: tuple[str, ...],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
) -> None:
    key = _ec_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        _builder(_name(common_name), ca_name, key)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.serving_cert_of(stem), pki.serving_key_of(stem), cert, key)


def _new_client_cert(
    pki: Pki, stem: str, subject: x509.Name, ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name
) -> None:
    key = _ec_key()
    cert = (
        _builder(subject, ca_name, key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.client_cert(stem), pki.client_key(stem), cert, key)


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_private_pem(key))
    key_path.chmod(0o600)
