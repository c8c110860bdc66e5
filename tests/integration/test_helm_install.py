"""The Helm chart on the local cluster, for real: it installs with the images `make images`
built, its operator and front door run as pods on the real node under the chart's
ServiceAccounts and Pod Security ``restricted``, the RBAC it grants is enough for them to do their
whole job and no more than they need, and neither can write outside its volumes.

While the release is installed, the session's own operator is paused: two operators would
fight over the same objects. The release's store and its replicas are
tests/integration/test_high_availability.py's.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paitient_secure_model as sdk
import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.secrets import (
    CA_BUNDLE_CONFIGMAP,
    CA_SECRET,
    PEPPER_SECRET,
    TIERS_CONFIGMAP,
    keys_secret_name,
)
from paitient_images import image
from paitient_localcluster.controlplane import audit
from paitient_localcluster.controlplane.pki import NODE_NAME
from paitient_localcluster.host.processes import free_port, wait_http_ok
from tests.integration.chart_release import (
    KUBECTL,
    Release,
    installed_release,
    ready_pod,
    run,
)
from tests.integration.node_pods import exec_python
from tests.integration.stack_helpers import tenant_ready
from tests.integration.waiting import wait_for

TENANT = ("paitient.ai/v1alpha1", "Tenant")
MD = ("paitient.ai/v1alpha1", "ModelDeployment")


@pytest.fixture(scope="module")
def release(kubeconfig: Path, kube: Kube, dataplane: Path) -> Iterator[Release]:
    """The chart installed (chart_release.py). ``dataplane``: model pods on the simulated GPU
    nodes turn Ready once it runs their gateways."""
    with installed_release(kubeconfig, kube, "h") as installed:
        yield installed


def test_install_creates_every_object_and_its_pods_run_on_the_real_node(
    release: Release, kube: Kube
) -> None:
    names = run(
        KUBECTL, "get", "deployment,serviceaccount,configmap,service,networkpolicy,role,rolebinding",
        "-n", release.namespace, "-o", "name", kubeconfig=release.kubeconfig,
    ).split()  # fmt: skip
    for kind in ("deployment.apps", "serviceaccount", "role.rbac.authorization.k8s.io",
                 "rolebinding.rbac.authorization.k8s.io"):  # fmt: skip
        assert f"{kind}/{release.operator}" in names
        assert f"{kind}/{release.api}" in names
    assert f"configmap/{release.operator}" in names
    assert f"service/{release.api}" in names
    assert f"networkpolicy.networking.k8s.io/{release.api}" in names
    cluster = run(
        KUBECTL, "get", "clusterrole,clusterrolebinding", "-o", "name",
        kubeconfig=release.kubeconfig,
    ).split()  # fmt: skip
    for name in (release.operator, release.api):
        assert f"clusterrole.rbac.authorization.k8s.io/{name}" in cluster
        assert f"clusterrolebinding.rbac.authorization.k8s.io/{name}" in cluster
    # Admitted under Pod Security `restricted`, and really running the built images.
    for component, account, image_name in (
        ("operator", release.operator, "paitient-operator"),
        ("api", release.api, "paitient-api"),
    ):
        pod = ready_pod(kube, release, component)
        assert pod is not None
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["spec"]["serviceAccountName"] == account
        assert pod["status"]["containerStatuses"][0]["image"] == image(image_name).reference


def test_operator_and_front_door_pods_cannot_write_outside_their_volumes(
    release: Release, kube: Kube
) -> None:
    for component in ("operator", "api"):
        pod = ready_pod(kube, release, component)
        assert pod is not None
        identity = exec_python(release.kubeconfig, release.namespace, pod["metadata"]["name"],
                               IDENTITY)  # fmt: skip
        assert identity.returncode == 0, identity.stderr
        uid, gid, caps, nnp = identity.stdout.split()
        security = pod["spec"]["securityContext"]
        assert (
            (int(uid), int(gid))
            == (security["runAsUser"], security["runAsGroup"])
            == (65532, 65532)
        )
        assert (caps, nnp) == ("0000000000000000", "1")
        writes = exec_python(release.kubeconfig, release.namespace, pod["metadata"]["name"],
                             WRITES, "/", "/usr/local", "/etc", "/tmp")  # fmt: skip
        assert writes.stdout.split() == ["refused", "refused", "refused", "written"], (
            component,
            writes.stdout,
            writes.stderr,
        )


IDENTITY = """
import os, pathlib
status = dict(l.split(":", 1) for l in pathlib.Path("/proc/self/status").read_text().splitlines())
print(os.getuid(), os.getgid(), status["CapEff"].strip(), status["NoNewPrivs"].strip())
"""
WRITES = """
import pathlib, sys
for directory in sys.argv[1:]:
    try:
        (pathlib.Path(directory) / "paitient-write-probe").write_text("x")
        print("written")
    except OSError:
        print("refused")
"""


def can_i(release: Release, account: str, *args: str) -> bool:
    answer = run(
        KUBECTL, "auth", "can-i", *args, f"--as={release.user(account)}",
        kubeconfig=release.kubeconfig, check=False,
    ).strip()  # fmt: skip
    assert answer in ("yes", "no"), answer
    return answer == "yes"


def test_rbac_grants_what_the_code_needs_and_nothing_beyond(release: Release) -> None:
    ns, op, api = release.namespace, release.operator, release.api
    md, tn = "modeldeployments.paitient.ai", "tenants.paitient.ai"
    allowed = {
        op: [
            ("create", "secrets", "-n", ns),
            ("patch", f"secrets/{PEPPER_SECRET}", "-n", ns),
            ("patch", f"configmaps/{TIERS_CONFIGMAP}", "-n", ns),
            ("create", "deployments.apps", "-n", "any-tenant"),
            ("patch", "networkpolicies.networking.k8s.io", "-n", "any-tenant"),
            ("patch", md, "--subresource=status", "-n", "any-tenant"),
            ("patch", tn, "--subresource=status"),
            ("update", tn, "--subresource=finalizers"),
            ("watch", "pods", "--all-namespaces"),
            ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
            ("create", "namespaces"),
            ("create", "events", "-n", "any-tenant"),
            # the gateways' roles and, per ModelDeployment, their bindings
            ("patch", "clusterroles.rbac.authorization.k8s.io/paitient-gateway"),
            ("patch", "roles.rbac.authorization.k8s.io/paitient-gateway-keys", "-n", ns),
            ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
            ("delete", "rolebindings.rbac.authorization.k8s.io", "-n", ns),
            # the gateways' CA, its public bundle, and each model's serving certificate
            ("patch", f"secrets/{CA_SECRET}", "-n", f"{ns}-ca"),
            ("patch", f"configmaps/{CA_BUNDLE_CONFIGMAP}", "-n", ns),
            ("get", "secrets/model-tls", "-n", "any-tenant"),
            ("create", "secrets", "-n", "any-tenant"),
            ("patch", "secrets/model-tls", "-n", "any-tenant"),
            # leader election, and the store's restart when its certificate changes
            ("create", "leases.coordination.k8s.io", "-n", ns),
            ("update", "leases.coordination.k8s.io/paitient-operator", "-n", ns),
            ("patch", f"statefulsets.apps/{release.store}", "-n", ns),
        ],
        api: [
            ("list", "secrets", "-n", ns),
            ("get", f"secrets/{PEPPER_SECRET}", "-n", ns),
            ("get", f"configmaps/{TIERS_CONFIGMAP}", "-n", ns),
            ("get", f"configmaps/{CA_BUNDLE_CONFIGMAP}", "-n", ns),
            ("create", md, "-n", "any-tenant"),
            ("delete", md, "-n", "any-tenant"),
            ("list", tn),
        ],
    }
    denied = {
        op: [
            # Serving certificates are read by name: no Secret can be enumerated elsewhere.
            ("list", "secrets", "--all-namespaces"),
            ("list", "secrets", "-n", "kube-system"),
            ("watch", "secrets", "-n", "any-tenant"),
            ("delete", "secrets", "-n", "any-tenant"),
            ("get", "configmaps/kube-root-ca.crt", "-n", ns),
            ("delete", "deployments.apps", "-n", "any-tenant"),
            ("delete", "namespaces"),
            ("create", "pods", "-n", "any-tenant"),
            ("create", md, "-n", "any-tenant"),
            ("update", md, "-n", "any-tenant"),
            ("list", "namespaces"),
            ("bind", "clusterroles.rbac.authorization.k8s.io"),
            ("escalate", "clusterroles.rbac.authorization.k8s.io"),
            ("patch", "clusterroles.rbac.authorization.k8s.io/admin"),
            ("patch", "roles.rbac.authorization.k8s.io/other", "-n", ns),
            ("update", "leases.coordination.k8s.io/kube-controller-manager", "-n", ns),
            ("update", "leases.coordination.k8s.io/paitient-operator", "-n", "kube-system"),
            ("patch", "statefulsets.apps/other", "-n", ns),
            ("delete", "statefulsets.apps", "-n", ns),
        ],
        api: [
            ("get", "secrets", "-n", "kube-system"),
            ("get", "secrets/model-tls", "-n", "any-tenant"),
            ("get", f"secrets/{CA_SECRET}", "-n", f"{ns}-ca"),
            ("create", "secrets", "-n", ns),
            ("patch", f"configmaps/{CA_BUNDLE_CONFIGMAP}", "-n", ns),
            ("patch", f"secrets/{keys_secret_name('acme')}", "-n", ns),
            ("patch", tn),
            ("create", tn),
            ("patch", md, "--subresource=status", "-n", "any-tenant"),
            ("get", "pods", "-n", "any-tenant"),
            ("create", "deployments.apps", "-n", "any-tenant"),
        ],
    }
    cases = [
        (expected, account, check)
        for expected, table in ((True, allowed), (False, denied))
        for account, checks in table.items()
        for check in checks
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:  # one kubectl each: in parallel
        answers = list(pool.map(lambda case: can_i(release, case[1], *case[2]), cases))
    wrong = [
        f"{account} {'may' if expected else 'may not'}: {' '.join(check)}"
        for (expected, account, check), answer in zip(cases, answers, strict=True)
        if answer is not expected
    ]
    assert not wrong


def test_operator_and_front_door_do_their_job_with_the_charts_rbac_alone(
    release: Release, kube: Kube
) -> None:
    """The chart's pods themselves: the operator sets up the release namespace and a tenant,
    the front door (reached through a port-forward to its Service) serves the SDK."""
    audit_log = release.kubeconfig.parent / "logs" / "audit.log"
    offset = audit.log_size(audit_log)
    name = f"helm{uuid.uuid4().hex[:6]}"
    client_id = f"{name}-clinic"
    # At start, in the release namespace: the pepper, the tiers, the CA's bundle; and the CA
    # itself in a namespace of its own.
    for kind, obj_name in (
        ("Secret", PEPPER_SECRET),
        ("ConfigMap", TIERS_CONFIGMAP),
        ("ConfigMap", CA_BUNDLE_CONFIGMAP),
    ):
        assert kube.get("v1", kind, obj_name, namespace=release.namespace), obj_name
    assert kube.get("v1", "Secret", CA_SECRET, namespace=f"{release.namespace}-ca")
    assert not kube.get("v1", "Secret", CA_SECRET, namespace=release.namespace)
    port = free_port()
    forward = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(release.kubeconfig), "-n", release.namespace,
         "port-forward", f"service/{release.api}", f"{port}:80"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        admin.create_tenant(kube, name, client_id, "standard", None, {"standard"})
        wait_for(lambda: tenant_ready(kube, name), timeout=60, what="tenant Ready")
        secret = keys_secret_name(name)
        wait_for(
            lambda: kube.get("v1", "Secret", secret, namespace=release.namespace),
            what="the tenant's key Secret in the release namespace",
        )
        key = admin.create_key(kube, client_id, None, "", release.namespace)[0]
        assert wait_http_ok(f"http://127.0.0.1:{port}/readyz", 30), "the front door's Service"
        client = sdk.SecureModelClient(
            api_key=key, client_id=client_id, base_url=f"http://127.0.0.1:{port}/v1"
        )
        assert client.get_subscription().tier == "standard"
        client.deploy_model(
            model_name="ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name="gpu-model", use_gpu=True
        )
        client.wait_until_ready("gpu-model", timeout=90, poll_interval=0.5)
        assert [d.id for d in client.list_deployments()] == ["gpu-model"]
        md = kube.get(*MD, "gpu-model", namespace=f"tenant-{name}") or {}
        assert md["status"]["phase"] == "Ready"
        # Its gateway will look for keys where this release keeps them.
        pod = (kube.get("apps/v1", "Deployment", "gpu-model", namespace=f"tenant-{name}") or {})[
            "spec"
        ]["template"]["spec"]
        env = {e["name"]: e.get("value") for c in pod["containers"] for e in c.get("env", [])}
        assert env["PAITIENT_SYSTEM_NAMESPACE"] == release.namespace
        client.close()
        # Before the clean-up: deleting a namespace makes Event posts in it fail, on purpose.
        events = list(audit.read_events(audit_log, offset))
        logs = "".join(
            run(KUBECTL, "logs", "-n", release.namespace, f"deployment/{component}",
                kubeconfig=release.kubeconfig, check=False)
            for component in (release.operator, release.api)
        )  # fmt: skip
    finally:
        forward.terminate()
        forward.wait(timeout=10)
        _delete_tenant(kube, name)
    # A namespace being deleted (another test's) refuses Events with 403 too: not RBAC.
    refusals = [
        line
        for line in logs.splitlines()
        if ("Forbidden" in line or "Not enough permissions" in line)
        and "being terminated" not in line
    ]
    assert not refusals, "\n".join(refusals[:5])
    if not audit_log.is_file():
        return  # another cluster (PAITIENT_TEST_KUBECONFIG): the logs are all there is
    op_user, api_user = release.user(release.operator), release.user(release.api)
    refused = [e for e in events if e.user in (op_user, api_user) and e.refused_by_rbac]
    assert not refused
    # The work was done under the chart's accounts, not by someone else's operator.
    op_writes = {(e.verb, e.resource, e.subresource) for e in audit.writes_by(events, op_user)}
    # Children are created by Server-Side Apply: a PATCH, which RBAC also checks as "create".
    assert {
        ("patch", "namespaces", ""),
        ("patch", "secrets", ""),
        ("patch", "deployments", ""),
        ("patch", "persistentvolumeclaims", ""),
        ("patch", "modeldeployments", "status"),
        ("patch", "tenants", "status"),
    } <= op_writes
    api_writes = {(e.verb, e.resource) for e in audit.writes_by(events, api_user)}
    assert api_writes == {("create", "modeldeployments")}


def _delete_tenant(kube: Kube, name: str) -> None:
    """Delete the tenant (its namespace and deployments go with it) while our operator still
    runs to release its finalizer; strip the finalizer if it does not."""
    if kube.get(*TENANT, name) is None:
        return
    admin.delete_tenant(kube, name, force=True)
    try:
        wait_for(lambda: kube.get(*TENANT, name) is None, timeout=30, what="tenant deleted")
    except AssertionError:
        kube.patch(*TENANT, name, {"metadata": {"finalizers": None}})
