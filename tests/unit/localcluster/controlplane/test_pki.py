"""The cluster's certificates: the node's identities and serving certificates, re-issued by the same CA."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from paitient_localcluster.addresses import NODE_IP
from paitient_localcluster.controlplane.pki import CLIENTS, SERVERS, ensure_pki
from paitient_localcluster.node.config import NODE_NAME


def test_node_identities_and_the_kubelet_serving_certificate(tmp_path: Path) -> None:
    assert CLIENTS["node"] == (f"system:node:{NODE_NAME}", "system:nodes")
    assert CLIENTS["kube-proxy"][0] == "system:kube-proxy"  # bound to system:node-proxier
    pki = ensure_pki(tmp_path)
    kubelet = x509.load_pem_x509_certificate(pki.serving_cert_of("kubelet").read_bytes())
    sans = kubelet.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [NODE_IP]
    apiserver = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    api_sans = apiserver.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert NODE_IP in {str(ip) for ip in api_sans.get_values_for_type(x509.IPAddress)}


def test_a_serving_certificate_missing_a_name_is_issued_again_by_the_same_ca(
    tmp_path: Path,
) -> None:
    pki = ensure_pki(tmp_path)
    ca, kubelet = pki.ca_cert.read_bytes(), pki.serving_cert_of("kubelet").read_bytes()
    # A run directory from before the node address existed: its certificate lacks names.
    pki.serving_cert.write_bytes(kubelet)
    assert not pki.exists()
    ensure_pki(tmp_path)
    assert pki.exists() and pki.ca_cert.read_bytes() == ca
    served = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == set(SERVERS["apiserver"][1])
