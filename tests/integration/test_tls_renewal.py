"""Serving certificates renewed before they expire, and picked up by a running gateway without a
restart, two ways:

- on the local data plane (a simulated GPU node), whose copy of the Secret volume follows the
  Secret on every sync, under bounded load that must see no failure;
- on the real node, where the kubelet itself updates a gateway pod's Secret volume: the
  operator's own rendered gateway container, reached from the front door's namespace.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509 as cx509
from cryptography.hazmat.primitives.serialization import Encoding

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_images import image
from paitient_localcluster.controlplane.pki import NODE_NAME
from tests.integration.frontdoor_process import ApiProcess
from tests.integration.gateway_tls import SYSTEM, ca_bundle, gateway, route_entry
from tests.integration.node_pods import (
    PROBE_IMAGE,
    SLEEP,
    create_ready,
    exec_python,
    kubectl,
    pod_manifest,
)
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import make_tenant
from tests.integration.tls_helpers import (
    MD,
    Load,
    completion,
    model_deployment,
    routes_of,
    served_certificate,
)
from tests.integration.waiting import wait_for


def test_a_certificate_near_expiry_is_replaced_before_it_expires_and_no_request_is_lost(
    stack: ApiProcess, kube: Kube, kubeconfig: Path, tmp_path: Path
) -> None:
    """Load runs throughout, every handshake verifying the certificate's dates: a certificate
    served past its expiry would fail one. No wall-clock comparison decides it."""
    short = OperatorProcess.for_cluster(
        kubeconfig,
        tmp_path / "operator.log",
        # 60 s certificates replaced 45 s before expiry: a renewal every ~15 s.
        env={
            "PAITIENT_TLS_CERTIFICATE_LIFETIME": "60s",
            "PAITIENT_TLS_RENEW_BEFORE": "45s",
            "PAITIENT_TLS_RENEWAL_CHECK_SECONDS": "1",
        },
    )
    tenant = make_tenant(kube, tier="enterprise")  # 6,000 requests a minute: no 429 here
    namespace, name = tenant["namespace"], "renewing"
    seen: dict[int, cx509.Certificate] = {}  # serial -> the certificate
    try:
        with OperatorProcess.others_paused():
            short.start()
            try:
                kube.create(model_deployment(name, namespace))
                key = f"{namespace}/{name}"
                gw = gateway(routes_of(stack), key, kube, timeout=120)
                wait_for(lambda: completion(gw, tenant) == 200, what="the gateway to serve")
                load = Load(gw, tenant)
                threads = load.start()
                try:

                    def renewed_twice() -> bool:
                        cert = served_certificate(gw)
                        seen.setdefault(cert.serial_number, cert)
                        return len(seen) >= 3

                    wait_for(renewed_twice, timeout=150, interval=0.25, what="two renewals")
                finally:
                    load.stop.set()
                    for thread in threads:
                        thread.join(timeout=60)
                still = route_entry(routes_of(stack), key)
                status = (kube.get(*MD, name, namespace=namespace) or {}).get("status") or {}
            finally:
                short.stop()
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)

    # Every handshake of the load verified the certificate: none was served expired.
    assert not load.failures, load.failures[:5]
    assert load.statuses and set(load.statuses) == {200}, sorted(set(load.statuses))
    # the same gateway process, the only replica, served throughout
    assert (still["url"], still["serverName"]) == (gw.url, gw.server_name)
    assert [r["url"] for r in still.get("replicas", [])] == [gw.url]
    (log,) = (routes_of(stack).parent / "dataplane" / "logs").glob(
        f"gateway-{namespace}-{name}-*.log"
    )
    assert log.read_text().count("reloaded the TLS certificate") >= 2
    assert status["servingCertificate"]["secretName"] == f"{name}-tls"
    assert status["servingCertificate"]["issuer"] == "paitient-operator"


# -- the real node: the kubelet updates the Secret volume -----------------------------------------

# The certificate a TLS server presents, as the SHA-256 of its DER (the probe image has no
# cryptography package), verified against the CA bundle for the Service name.
PRESENTED = """
import hashlib, socket, ssl, sys
host, port, name, ca = sys.argv[1:5]
context = ssl.create_default_context(cadata=ca)
with socket.create_connection((host, int(port)), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname=name) as tls:
        print(hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest())
"""


def _fingerprint(pem: str) -> str:
    der = cx509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def _gateway_on_the_real_node(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    """The operator's own gateway container for the deployment, with its volumes, in a pod on
    the real node (its model server is not there: no readiness probe; it still serves TLS)."""
    spec = deployment["spec"]["template"]["spec"]
    [container] = [dict(c) for c in spec["containers"] if c["name"] == "gateway"]
    for probe in ("readinessProbe", "startupProbe", "livenessProbe"):
        container.pop(probe, None)
    container["imagePullPolicy"] = "Never"
    container["resources"] = {"requests": {"cpu": "50m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}}  # fmt: skip
    used = {m["name"] for m in container.get("volumeMounts", [])}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(deployment["spec"]["selector"]["matchLabels"])},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
            "terminationGracePeriodSeconds": 0,
            "serviceAccountName": spec["serviceAccountName"],
            "automountServiceAccountToken": False,
            "securityContext": spec.get("securityContext", {}),
            "containers": [container],
            "volumes": [v for v in spec["volumes"] if v["name"] in used],
        },
    }


def test_a_renewed_certificate_reaches_a_gateway_on_the_real_node_through_the_kubelet(
    stack: ApiProcess, kube: Kube, kubeconfig: Path, tmp_path: Path
) -> None:
    """3-minute certificates renewed 150 s ahead (a renewal every ~30 s, more time ahead than
    the kubelet's sync period of up to 90 s needs): the served certificate changes to one the
    operator wrote, the gateway's container never restarts, and it says it reloaded."""
    short = OperatorProcess.for_cluster(
        kubeconfig,
        tmp_path / "operator.log",
        env={
            "PAITIENT_TLS_CERTIFICATE_LIFETIME": "180s",
            "PAITIENT_TLS_RENEW_BEFORE": "150s",
            "PAITIENT_TLS_RENEWAL_CHECK_SECONDS": "1",
        },
    )
    tenant = make_tenant(kube)
    namespace, name = tenant["namespace"], "kubelet-renewed"
    pod, caller = f"{name}-on-node", f"tls-caller-{tenant['name']}"
    try:
        with OperatorProcess.others_paused():
            short.start()
            try:
                kube.create(model_deployment(name, namespace))
                deployment = wait_for(
                    lambda: kube.get("apps/v1", "Deployment", name, namespace=namespace),
                    what="the Deployment",
                )
                wait_for(lambda: kube.get("v1", "Secret", f"{name}-tls", namespace=namespace),
                         what="the serving certificate")  # fmt: skip
                running = create_ready(kube, namespace, _gateway_on_the_real_node(deployment, pod))
                create_ready(kube, SYSTEM,
                             pod_manifest(caller, image(PROBE_IMAGE).reference, SLEEP))  # fmt: skip
                issued: set[str] = set()  # every certificate the Secret has held

                def secret_now() -> str:
                    secret = kube.get("v1", "Secret", f"{name}-tls", namespace=namespace) or {}
                    pem = base64.b64decode(secret["data"]["tls.crt"]).decode()
                    issued.add(_fingerprint(pem))
                    return _fingerprint(pem)

                def presented() -> str:
                    done = exec_python(
                        kubeconfig, SYSTEM, caller, PRESENTED, running["status"]["podIP"],
                        "8443", f"{name}.{namespace}.svc", ca_bundle(kube),
                    )  # fmt: skip
                    assert done.returncode == 0, done.stderr
                    return done.stdout.strip()

                first = wait_for(presented, timeout=60, what="the gateway pod serving TLS")
                secret_now()
                assert first in issued
                # The Secret is renewed; then the kubelet brings a renewed one to the pod.
                wait_for(lambda: secret_now() != first, timeout=90, what="a renewal")
                later = wait_for(
                    lambda: (p := presented()) != first and (secret_now(), p)[1],
                    timeout=240,
                    interval=3,
                    what="the kubelet to update the Secret volume",
                )
                assert later in issued  # a certificate the operator wrote, not any other
                status = kube.get("v1", "Pod", pod, namespace=namespace) or {}
                restarts = [c["restartCount"] for c in status["status"]["containerStatuses"]]
                logs = kubectl(kubeconfig, "-n", namespace, "logs", pod).stdout
            finally:
                short.stop()
                kube.delete("v1", "Pod", caller, namespace=SYSTEM)
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)

    assert restarts == [0]  # the same process: the file changed under it
    assert "reloaded the TLS certificate" in logs
