"""Two parts of the chart a platform team needs beyond the pods: the admin CLI's ClusterRole and
Role (every call `paitient tenants` and `paitient keys` make is granted, nothing beyond), and the
CRDs as templates (upgraded with the chart, kept on uninstall, first in Argo CD's sync)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from paitient_cli import admin
from paitient_common import apikeys
from paitient_common.kubeapi import Kube, Obj
from paitient_common.secrets import PEPPER_KEY, PEPPER_SECRET, keys_secret_name
from tests.unit.chart_schemas import validate
from tests.unit.test_helm_chart import NAMESPACE, REPO, by_kind, one, render

RESOURCES = {
    "Tenant": ("paitient.ai", "tenants"),
    "ModelDeployment": ("paitient.ai", "modeldeployments"),
    "UsageReport": ("paitient.ai", "usagereports"),
    "Secret": ("", "secrets"),
    "ConfigMap": ("", "configmaps"),
}
TENANT: Obj = {
    "apiVersion": "paitient.ai/v1alpha1",
    "kind": "Tenant",
    "metadata": {"name": "acme"},
    "spec": {"clientId": "acme-clinic", "tier": "standard"},
    "status": {"namespace": "tenant-acme"},
}


@dataclass
class RecordingKube:
    """Answers the CLI's calls with one tenant and its Secrets, and records each as
    (verb, api group, resource, namespace, name)."""

    calls: list[tuple[str, str, str, str | None, str]] = field(default_factory=list)
    records: list[apikeys.KeyRecord] = field(default_factory=list)

    def _record(self, verb: str, kind: str, namespace: str | None, name: str = "") -> None:
        self.calls.append((verb, *RESOURCES[kind], namespace, name))

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        self._record("get", kind, namespace, name)
        if kind == "Tenant":
            return TENANT
        if kind == "ConfigMap":
            return {"data": {"standard": "{}"}}
        if name == PEPPER_SECRET:
            return {"data": {PEPPER_KEY: base64.b64encode(b"p" * 32).decode()}}
        return {"metadata": {"name": name, "resourceVersion": "1"}, "data": {}}

    def list(self, api_version: str, kind: str, *, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:  # fmt: skip
        self._record("list", kind, namespace)
        if kind == "Tenant":
            return [TENANT]
        if kind == "Secret":
            data = apikeys.records_to_secret_data(self.records)
            return [{"metadata": {"name": keys_secret_name("acme")}, "data": data}]
        return []

    def create(self, obj: Obj) -> Obj:
        self._record("create", obj["kind"], obj["metadata"].get("namespace"))
        return obj

    def patch(self, api_version: str, kind: str, name: str, patch: Obj, *,
              namespace: str | None = None, subresource: str | None = None) -> Obj:  # fmt: skip
        self._record("patch", kind, namespace, name)
        if kind == "Secret":
            self.records = apikeys.records_from_secret_data(patch.get("data"))
        return {}

    def delete(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> bool:
        self._record("delete", kind, namespace, name)
        return True


def _every_cli_call() -> list[tuple[str, str, str, str | None, str]]:
    recording = RecordingKube()
    kube = cast(Kube, recording)
    tiers = admin.known_tiers(kube, NAMESPACE)
    admin.create_tenant(kube, "beta", "beta-clinic", "standard", None, tiers)
    admin.list_tenants(kube)
    admin.set_suspended(kube, "acme", True)
    admin.set_suspended(kube, "acme", False)
    key_id = admin.create_key(kube, "acme-clinic", None, "", NAMESPACE)[2].split()[2]
    admin.list_keys(kube, None, NAMESPACE)
    admin.revoke_key(kube, key_id, NAMESPACE)
    admin.delete_tenant(kube, "acme", force=True)
    return recording.calls


def _granted(rules: list[Obj], group: str, resource: str, verb: str, name: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
        and (not r.get("resourceNames") or name in r["resourceNames"])
        for r in rules
    )  # fmt: skip


def test_the_admin_roles_grant_every_call_the_cli_makes() -> None:
    objects = render({})
    cluster = one(objects, "ClusterRole", "paitient-admin")["rules"]
    local = one(objects, "Role", "paitient-admin")["rules"]
    calls = _every_cli_call()
    assert {c[2] for c in calls} == {"tenants", "modeldeployments", "usagereports", "secrets",
                                     "configmaps"}  # fmt: skip
    for verb, group, resource, namespace, name in calls:
        # Cluster-wide resources, and namespaced ones read across namespaces, need the
        # ClusterRole; the release namespace's Secrets and ConfigMap only the Role.
        rules = local if namespace == NAMESPACE else cluster
        assert _granted(rules, group, resource, verb, name), (verb, resource, namespace, name)


def test_the_admin_roles_hold_nothing_more() -> None:
    objects = render({})
    cluster = one(objects, "ClusterRole", "paitient-admin")["rules"]
    local = one(objects, "Role", "paitient-admin")["rules"]
    for rule in (*cluster, *local):
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    # No Secret outside the release namespace, no write to a deployment, no RBAC at all.
    assert not any("secrets" in r["resources"] for r in cluster)
    for verb in ("create", "patch", "delete"):
        assert not _granted(cluster, "paitient.ai", "modeldeployments", verb, "")
        assert not _granted(local, "", "secrets", verb if verb != "patch" else "delete", "")
    assert not _granted(local, "", "configmaps", "get", "paitient-ca-bundle")


def test_admin_subjects_are_bound_to_both_roles() -> None:
    subjects = [{"kind": "Group", "name": "paitient-admins",
                 "apiGroup": "rbac.authorization.k8s.io"}]  # fmt: skip
    objects = render({"adminRole": {"subjects": subjects}})
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = one(objects, kind, "paitient-admin")
        validate(binding, kind)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": "paitient-admin",
        }
        assert binding["subjects"] == subjects
    default = render({})
    assert not [
        o for o in default if o["kind"].endswith("Binding") and "admin" in o["metadata"]["name"]
    ]
    none = render({"adminRole": {"create": False}})
    assert "paitient-admin" not in {o["metadata"]["name"] for o in none}


# -- CRDs ----------------------------------------------------------------------------------------


def test_the_crds_are_templates_kept_on_uninstall_and_first_in_argo_cds_sync() -> None:
    crds = by_kind(render({}), "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == sorted(
        p.name.removesuffix(".yaml") for p in (REPO / "crds").glob("*.yaml")
    )
    for crd in crds:
        generated = yaml.safe_load((REPO / "crds" / f"{crd['metadata']['name']}.yaml").read_text())
        assert crd["spec"] == generated["spec"], "the template changes nothing in the schema"
        assert crd["metadata"]["annotations"] == {
            "helm.sh/resource-policy": "keep",
            "argocd.argoproj.io/sync-wave": "-1",
            "argocd.argoproj.io/sync-options": "Delete=false",
        }
        labels = crd["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "paitient"
        validate(crd, crd["metadata"]["name"])
    unkept = by_kind(render({"crds": {"keep": False}}), "CustomResourceDefinition")
    assert all(
        c["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "-1"} for c in unkept
    )
    assert not by_kind(render({"crds": {"enabled": False}}), "CustomResourceDefinition")
