"""The command lines of the control-plane programs (pure: paths and ports in, argv out).

They all run inside the cluster's network namespace, where every listener binds to 127.0.0.1,
except the API server, which pods reach at the node's address too (the `kubernetes` Service).
The host reaches the loopback ports through the relay (``relay.py``). Flags follow what
upstream's envtest and kubeadm pass, trimmed to what a single-machine test cluster needs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..addresses import NODE_IP, SERVICE_CIDR, SIMULATED_POD_CIDR
from .pki import Pki
from .ports import Ports

ADMISSION_PLUGINS = ("NodeRestriction", "PodSecurity", "ResourceQuota", "LimitRanger")


@dataclass(frozen=True)
class Layout:
    """Where one running cluster keeps its state."""

    run_dir: Path

    @property
    def pki(self) -> Pki:
        return Pki(self.run_dir / "pki")

    @property
    def etcd_data(self) -> Path:
        return self.run_dir / "etcd-data"

    def kubeconfig(self, identity: str) -> Path:
        return self.run_dir / f"{identity}.kubeconfig"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfig("admin")

    @property
    def volumes(self) -> Path:
        """The stand-in provisioner's volumes (emptied at every fresh start, like etcd)."""
        return self.run_dir / "volumes"

    @property
    def audit_policy(self) -> Path:
        return self.run_dir / "audit-policy.yaml"

    @property
    def audit_log(self) -> Path:
        return self.run_dir / "logs" / "audit.log"


def etcd_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(binary),
        "--name=paitient-local",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=paitient-local={peer}",
        # A throwaway test store: durability is not worth an fsync per write here.
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=4294967296",
        "--log-level=warn",
    ]


def apiserver_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    pki = layout.pki
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        # Every address of the cluster's namespace (loopback and the node's): pods reach it
        # through the `kubernetes` Service, whose endpoint is the advertised node address.
        "--bind-address=0.0.0.0",
        f"--advertise-address={NODE_IP}",
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.service_account_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        "--authorization-mode=Node,RBAC",
        # logs, exec and port-forward: dial the kubelet at the node's InternalIP (its name does
        # not resolve), verify its serving certificate, and present our own client certificate.
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-certificate-authority={pki.ca_cert}",
        f"--kubelet-client-certificate={pki.client_cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
        f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
        # MutatingAdmissionPolicy (beta in 1.34, off by default): tests mutate the operator's
        # children in admission, as a cluster's policies would (tests/integration/test_apply.py).
        "--feature-gates=MutatingAdmissionPolicy=true",
        "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
        # Privileged pods are allowed by the apiserver itself so that Pod Security admission,
        # not a global switch, is what refuses them in restricted namespaces.
        "--allow-privileged=true",
        "--profiling=false",
        "--event-ttl=30m",
        # Every request of a non-system identity (tests, operator, CLI) is written to the audit
        # log, so tests and benchmarks can count exactly what the operator asks of the API.
        f"--audit-policy-file={layout.audit_policy}",
        f"--audit-log-path={layout.audit_log}",
        "--audit-log-format=json",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
        # One etcd, hundreds of objects at once in the benchmarks: lift the default in-flight caps.
        "--max-requests-inflight=1000",
        "--max-mutating-requests-inflight=500",
    ]


def controller_manager_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    kubeconfig = layout.kubeconfig("controller-manager")
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={layout.pki.service_account_key}",
        f"--root-ca-file={layout.pki.ca_cert}",
        f"--cluster-signing-cert-file={layout.pki.ca_cert}",
        f"--cluster-signing-key-file={layout.pki.ca_key}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        "--profiling=false",
        # Faster than the 30 s default so garbage collection of custom-resource owners is
        # noticed quickly in tests.
        "--concurrent-gc-syncs=20",
    ]


def scheduler_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    kubeconfig = layout.kubeconfig("scheduler")
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        "--profiling=false",
    ]


def kwok_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig('kwok')}",
        # Our own config keeps a stray ~/.kwok/kwok.yaml out of the cluster: KWOK's node
        # stages, and pod stages that leave a model pod's readiness to the data plane
        # (kwok_stages.py).
        f"--config={layout.run_dir / 'kwok.yaml'}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--cidr={SIMULATED_POD_CIDR}",
        "--node-ip=127.0.0.1",
        f"--server-address=127.0.0.1:{ports.kwok}",
        # Renew node Leases as kubelets do. Without them KWOK heartbeats through node status
        # every 20-45 s, which races the controller manager's 50 s grace period: nodes flap
        # NotReady and their pods lose readiness.
        "--node-lease-duration-seconds=40",
    ]


def provisioner_argv(layout: Layout) -> list[str]:
    # The stand-in provisioner is simulated infrastructure, like KWOK: it shares KWOK's identity,
    # which the audit policy leaves out, so the audit log holds only the project's requests.
    kubeconfig = layout.kubeconfig("kwok")
    return [sys.executable, "-m", "paitient_localcluster.simulated.provisioner", str(kubeconfig),
            str(layout.volumes)]  # fmt: skip
