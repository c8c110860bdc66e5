"""The Helm chart on the real control plane: it installs, and the RBAC it grants is enough for
the real operator and front door to do their whole job, and no more than they need.

The operator and front door run here as local processes holding nothing but a token of the
chart's ServiceAccounts (the images cannot be pulled here; KWOK only pretends to run the chart's
pods, which still proves the API server admits them under Pod Security ``restricted``).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paitient_secure_model as sdk
import pytest
import yaml

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.secrets import (
    CA_BUNDLE_CONFIGMAP,
    CA_SECRET,
    PEPPER_SECRET,
    TIERS_CONFIGMAP,
    keys_secret_name,
)
from paitient_localcluster import audit
from paitient_localcluster.kubeconfig import write_kubeconfig
from paitient_localcluster.processes import Managed
from paitient_localcluster.sa_kubeconfig import (
    mint_token,
    service_account_kubeconfig,
    service_account_user,
)
from paitient_operator.resources.install import install_crds
from tests.integration.frontdoor_process import ApiProcess
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import tenant_ready
from tests.integration.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "paitient"
HELM = REPO / ".local" / "bin" / "helm"
KUBECTL = REPO / ".local" / "bin" / "kubectl"
TENANT = ("paitient.ai/v1alpha1", "Tenant")
MD = ("paitient.ai/v1alpha1", "ModelDeployment")


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    kubeconfig: Path

    @property
    def operator(self) -> str:
        return f"{self.name}-paitient-operator"

    @property
    def api(self) -> str:
        return f"{self.name}-paitient-api"

    def user(self, service_account: str) -> str:
        return service_account_user(self.namespace, service_account)


def run(tool: Path, *args: str, kubeconfig: Path, check: bool = True) -> str:
    if not tool.is_file():
        pytest.fail(f"{tool} is missing: run `make setup`")
    result = subprocess.run(
        [str(tool), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"{tool.name} {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def release(kubeconfig: Path, kube: Kube) -> Iterator[Release]:
    """The chart installed into a fresh namespace that enforces Pod Security ``restricted``;
    uninstalled and the namespace deleted afterwards."""
    install_crds(kube)  # usually there already: the chart's own copy is skipped (--skip-crds)
    suffix = uuid.uuid4().hex[:6]
    rel = Release(f"h{suffix}", f"paitient-helm-{suffix}", kubeconfig)
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": rel.namespace,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    try:
        run(
            HELM, "install", rel.name, str(CHART), "--namespace", rel.namespace, "--skip-crds",
            # The front door creates ModelDeployments that name no class: the local encrypted one.
            "--set", "operator.config.defaultStorageClass=encrypted-local",
            kubeconfig=kubeconfig,
        )  # fmt: skip
        yield rel
    finally:
        run(HELM, "uninstall", rel.name, "--namespace", rel.namespace, kubeconfig=kubeconfig,
            check=False)  # fmt: skip
        kube.delete("v1", "Namespace", rel.namespace)
        kube.delete("v1", "Namespace", f"{rel.namespace}-ca")  # the operator's, not Helm's


def test_install_creates_every_object_and_the_pods_are_admitted(
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

    # Pod Security `restricted` admits the pods: the ReplicaSets could create them (whether they
    # then run depends on the images being pullable, which they are not here).
    def admitted(component: str) -> bool:
        selector = (
            f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component={component}"
        )
        return bool(kube.list("v1", "Pod", namespace=release.namespace, label_selector=selector))

    for component in ("operator", "api"):
        wait_for(lambda c=component: admitted(c), timeout=60, what=f"a {component} pod")


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


def token_kubeconfig(release: Release, account: str, path: Path) -> Path:
    """A kubeconfig holding only a TokenRequest token of ``account``, its namespace the
    release's (as in the pod)."""
    admin_kube = Kube.from_kubeconfig(str(release.kubeconfig))
    token = mint_token(admin_kube, release.namespace, account, expiration_seconds=3600)
    admin_config = yaml.safe_load(release.kubeconfig.read_text())
    document = service_account_kubeconfig(
        admin_config, release.kubeconfig, token.token, release.namespace, account
    )
    return write_kubeconfig(path, document)


def test_operator_and_front_door_do_their_job_with_the_charts_rbac_alone(
    release: Release, kube: Kube, dataplane: Path, tmp_path: Path
) -> None:
    """``dataplane``: the model pod turns Ready only once the data plane runs its gateway."""
    if Managed("operator", release.kubeconfig.parent).read_pid() is not None:
        pytest.skip("a `make up` operator runs on this cluster; two operators would fight")
    config = kube.get("v1", "ConfigMap", release.operator, namespace=release.namespace)
    assert config is not None
    config_file = tmp_path / "operator.yaml"
    config_file.write_text(config["data"]["operator.yaml"])
    audit_log = release.kubeconfig.parent / "logs" / "audit.log"
    offset = audit.log_size(audit_log)
    name = f"helm{uuid.uuid4().hex[:6]}"
    client_id = f"{name}-clinic"
    operator = OperatorProcess(
        token_kubeconfig(release, release.operator, tmp_path / "operator.kubeconfig"),
        tmp_path / "operator.log",
        env={"PAITIENT_OPERATOR_CONFIG": str(config_file)},
    )
    front_door = ApiProcess(
        token_kubeconfig(release, release.api, tmp_path / "api.kubeconfig"),
        tmp_path / "api.log",
        system_namespace=release.namespace,
    )
    with OperatorProcess.others_paused():
        try:
            operator.start()
            # At start, in the release namespace: the pepper, the tiers, the CA's bundle; and
            # the CA itself in a namespace of its own.
            for kind, obj_name in (
                ("Secret", PEPPER_SECRET),
                ("ConfigMap", TIERS_CONFIGMAP),
                ("ConfigMap", CA_BUNDLE_CONFIGMAP),
            ):
                assert kube.get("v1", kind, obj_name, namespace=release.namespace), obj_name
            assert kube.get("v1", "Secret", CA_SECRET, namespace=f"{release.namespace}-ca")
            assert not kube.get("v1", "Secret", CA_SECRET, namespace=release.namespace)
            admin.create_tenant(kube, name, client_id, "standard", None, {"standard"})
            wait_for(lambda: tenant_ready(kube, name), timeout=60, what="tenant Ready")
            secret = keys_secret_name(name)
            wait_for(
                lambda: kube.get("v1", "Secret", secret, namespace=release.namespace),
                what="the tenant's key Secret in the release namespace",
            )
            key = admin.create_key(kube, client_id, None, "", release.namespace)[0]

            front_door.start()  # ready once it has read keys, pepper, tenants and tiers
            client = sdk.SecureModelClient(
                api_key=key, client_id=client_id, base_url=front_door.base_url
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
            pod = (
                kube.get("apps/v1", "Deployment", "gpu-model", namespace=f"tenant-{name}") or {}
            )["spec"]["template"]["spec"]
            env = {e["name"]: e.get("value") for c in pod["containers"] for e in c.get("env", [])}
            assert env["PAITIENT_SYSTEM_NAMESPACE"] == release.namespace
            client.close()
            # Before the clean-up: deleting a namespace makes Event posts in it fail, on purpose.
            events = list(audit.read_events(audit_log, offset))
            logs = operator.log.read_text() + front_door.log.read_text()
        finally:
            front_door.stop()
            _delete_tenant(kube, name)
            operator.stop()
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
    assert {
        ("create", "namespaces", ""),
        ("create", "secrets", ""),
        ("create", "deployments", ""),
        ("create", "persistentvolumeclaims", ""),
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
