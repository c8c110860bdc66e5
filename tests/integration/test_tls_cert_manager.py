"""The operator's cert-manager issuer against cert-manager itself: its real CRDs (the API
server enforces their schema) and its own controllers (the pinned release's, built from the Go
module proxy by ``make cluster-build``: ``localcluster/gomod/certmanager``), issuing from a CA
ClusterIssuer. The operator writes a Certificate, not a Secret; cert-manager signs it and
writes the Secret; the operator reads the Certificate's status into the ModelDeployment's; the
gateway serves what cert-manager issued, for the Service's names, trusted through the bundle the
operator publishes (the issuer's CA)."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509 as cx509

from paitient_common.kubeapi import Kube, KubeError
from paitient_common.resources.install import CRD, install_crds
from paitient_common.tls import client_context
from paitient_localcluster.upstream.build import ensure_built
from paitient_localcluster.upstream.certmanager import fetch_crds
from paitient_localcluster.upstream.versions import CERT_MANAGER_CONTROLLER
from paitient_operator.certificates import x509
from tests.integration.frontdoor_process import ApiProcess
from tests.integration.gateway_tls import Gateway, ca_bundle, route_entry
from tests.integration.operator_process import OperatorProcess
from tests.integration.tls_helpers import MD, model_deployment, routes_of, served_certificate
from tests.integration.waiting import wait_for

CERTIFICATE = ("cert-manager.io/v1", "Certificate")
CLUSTER_ISSUER = ("cert-manager.io/v1", "ClusterIssuer")
ISSUER_NAME = "clinic-ca"


@dataclass
class CertManager:
    issuer_ca: x509.KeyPair
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def cert_manager(kube: Kube, kubeconfig: Path, tmp_path: Path) -> Iterator[CertManager]:
    """cert-manager's CRDs and its controllers, with a CA ClusterIssuer ``clinic-ca`` (its key
    in a namespace of cert-manager's own); every bit of it removed afterwards."""
    binary = ensure_built(lambda _m: None, [CERT_MANAGER_CONTROLLER])["cert-manager-controller"]
    names = install_crds(kube, fetch_crds())
    resources = f"cert-manager-{uuid.uuid4().hex[:6]}"
    issuer_ca = x509.new_authority(
        "the clinic's cert-manager CA", timedelta(days=1), datetime.now(UTC)
    )
    log = tmp_path / "cert-manager.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": resources}})
        kube.create(
            {
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "clinic-ca-key", "namespace": resources},
                "data": {"tls.crt": base64.b64encode(issuer_ca.cert_pem.encode()).decode(),
                         "tls.key": base64.b64encode(issuer_ca.key_pem.encode()).decode()},
            }
        )  # fmt: skip
        kube.create(
            {
                "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                "metadata": {"name": ISSUER_NAME}, "spec": {"ca": {"secretName": "clinic-ca-key"}},
            }
        )  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(binary), "--kubeconfig", str(kubeconfig),
                 "--cluster-resource-namespace", resources],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        manager = CertManager(issuer_ca, log)

        def issuer_ready() -> bool:
            assert proc is not None and proc.poll() is None, manager.tail()
            issuer = kube.get(*CLUSTER_ISSUER, ISSUER_NAME) or {}
            conditions = (issuer.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        wait_for(issuer_ready, timeout=60, what="cert-manager to find the CA issuer ready")
        yield manager
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        kube.delete(*CLUSTER_ISSUER, ISSUER_NAME)
        kube.delete("v1", "Namespace", resources)
        for crd in names:
            kube.delete(*CRD, crd)


def test_with_cert_manager_its_controllers_issue_what_the_operator_asks_for(
    cert_manager: CertManager,
    stack: ApiProcess,
    kube: Kube,
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
) -> None:
    issuer_ca = cert_manager.issuer_ca
    operator = OperatorProcess.for_cluster(
        kubeconfig,
        tmp_path / "operator.log",
        env={
            "PAITIENT_TLS_ISSUER": "cert-manager",
            "PAITIENT_TLS_CERT_MANAGER_ISSUER_NAME": ISSUER_NAME,
            "PAITIENT_TLS_CERT_MANAGER_CA_BUNDLE": issuer_ca.cert_pem,
        },
    )
    name = "managed"
    with OperatorProcess.others_paused():
        operator.start()
        try:
            # The bundle the front door trusts becomes the issuer's once this operator leads
            # (it takes the Lease after the paused one's runs out).
            wait_for(lambda: ca_bundle(kube) == issuer_ca.cert_pem, timeout=60,
                     what="the issuer's CA as the bundle")  # fmt: skip
            kube.create(model_deployment(name, namespace))
            cert = wait_for(
                lambda: kube.get(*CERTIFICATE, f"{name}-tls", namespace=namespace),
                what="the Certificate",
            )
            # cert-manager's controllers, not this test, sign it and write the Secret.
            secret = wait_for(
                lambda: kube.get("v1", "Secret", f"{name}-tls", namespace=namespace),
                timeout=60, what=f"cert-manager to issue the Secret:\n{cert_manager.tail()}",
            )  # fmt: skip
            issued = cx509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
            status = wait_for(
                lambda: (
                    (s := (kube.get(*MD, name, namespace=namespace) or {}).get("status") or {})
                    .get("servingCertificate", {}).get("notAfter")
                    and s
                ),
                what="the deployment's status to show the issued certificate",
            )  # fmt: skip
            certificate_status = (kube.get(*CERTIFICATE, f"{name}-tls", namespace=namespace) or {})[
                "status"
            ]
            deployment = kube.get("apps/v1", "Deployment", name, namespace=namespace) or {}
            # The gateway serves what cert-manager issued: verified with the issuer's CA (the
            # bundle the front door trusts) for the Service's name.
            entry = route_entry(routes_of(stack), f"{namespace}/{name}", timeout=120)
            served = served_certificate(
                Gateway(entry["url"], entry["serverName"], client_context(issuer_ca.cert_pem))
            )
            bad = {**cert, "metadata": {"name": "bad", "namespace": namespace}}
            bad["spec"] = {**cert["spec"], "privateKey": {"algorithm": "DSA"}}
            with pytest.raises(KubeError, match="algorithm"):
                kube.create(bad)  # cert-manager's schema is really enforced
        finally:
            operator.stop()
    spec = cert["spec"]
    assert spec["secretName"] == f"{name}-tls"
    assert spec["dnsNames"] == [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]
    assert spec["issuerRef"] == {
        "name": ISSUER_NAME,
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert cert["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    # Signed by the issuer's CA, for the names asked, as cert-manager's controllers made it.
    assert x509.signed_by(issued, [issuer_ca.cert])
    assert set(x509.names_of(issued)) == set(spec["dnsNames"])
    assert served.serial_number == issued.serial_number
    ready = next(c for c in certificate_status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": f"{name}-tls", "defaultMode": 0o440} in [v.get("secret") for v in volumes]
    assert status["servingCertificate"] == {
        "secretName": f"{name}-tls",
        "issuer": f"ClusterIssuer/{ISSUER_NAME}",
        "notAfter": certificate_status["notAfter"],
        "renewAfter": certificate_status["renewalTime"],
    }
    ready = next(c for c in status["conditions"] if c["type"] == "CertificateReady")
    assert ready["status"] == "True"
