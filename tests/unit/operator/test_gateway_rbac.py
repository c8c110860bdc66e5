"""The gateway's roles, the identity the gateways of a namespace share and the bindings that give
it the roles, and an earlier operator's per-deployment bindings to remove (pure)."""

from __future__ import annotations

from paitient_operator.builders.gateway_identity import GATEWAY_ACCOUNT, build_gateway_identity
from paitient_operator.builders.gateway_rbac import (
    KEYS_ROLE,
    MD_UID_LABEL,
    NAMESPACE_ROLE,
    TENANTS_ROLE,
    build_gateway_cross_namespace_bindings,
    build_gateway_roles,
    gateway_bindings_to_delete,
)
from tests.unit.operator.factories import make_md


def grants(role: dict) -> set[tuple[str, str, str, str]]:
    return {
        (group, resource, verb, ",".join(rule.get("resourceNames", [])))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_roles_grant_only_what_the_gateway_reads_and_writes() -> None:
    namespace_role, tenants_role, keys_role = build_gateway_roles("paitient-system")
    assert grants(namespace_role) == {
        ("paitient.ai", "modeldeployments", "get", ""),
        ("paitient.ai", "modeldeployments", "list", ""),
        ("paitient.ai", "modeldeployments", "watch", ""),
        ("paitient.ai", "usagereports", "get", ""),
        ("paitient.ai", "usagereports", "create", ""),
        ("paitient.ai", "usagereports", "patch", ""),
    }
    assert grants(tenants_role) == {
        ("paitient.ai", "tenants", verb, "") for verb in ("get", "list", "watch")
    }
    assert keys_role["kind"] == "Role" and keys_role["metadata"]["namespace"] == "paitient-system"
    assert grants(keys_role) == {
        *(("", "secrets", verb, "") for verb in ("get", "list", "watch")),
        *(("", "configmaps", verb, "paitient-tiers") for verb in ("get", "list", "watch")),
    }


def test_a_namespaces_gateways_share_one_account_bound_to_the_three_roles() -> None:
    account, in_namespace, keys, tenants = build_gateway_identity("tenant-a", "ns-uid", "sys")
    assert account["kind"] == "ServiceAccount"
    assert account["metadata"] == {
        "name": GATEWAY_ACCOUNT, "namespace": "tenant-a", "labels": account["metadata"]["labels"],
    }  # fmt: skip
    assert account["automountServiceAccountToken"] is False
    subject = [{"kind": "ServiceAccount", "name": GATEWAY_ACCOUNT, "namespace": "tenant-a"}]
    assert in_namespace["kind"] == "RoleBinding"
    assert in_namespace["metadata"]["namespace"] == "tenant-a"
    assert in_namespace["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAMESPACE_ROLE,
    }  # fmt: skip
    assert keys["kind"] == "RoleBinding" and keys["metadata"]["namespace"] == "sys"
    assert keys["roleRef"]["kind"] == "Role" and keys["roleRef"]["name"] == KEYS_ROLE
    assert tenants["kind"] == "ClusterRoleBinding" and "namespace" not in tenants["metadata"]
    assert tenants["roleRef"]["name"] == TENANTS_ROLE
    for binding in (in_namespace, keys, tenants):
        assert binding["subjects"] == subject
    # Outside the namespace: owned by the Namespace (deleted with it), named after it.
    for binding in (keys, tenants):
        assert binding["metadata"]["name"] == "paitient-gateway.tenant-a"
        assert binding["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Namespace", "name": "tenant-a", "uid": "ns-uid"}
        ]
        assert MD_UID_LABEL not in binding["metadata"]["labels"]


def test_cross_namespace_bindings_are_labelled_with_their_deployment() -> None:
    md = make_md("chat").obj()
    role_binding, cluster_binding = build_gateway_cross_namespace_bindings(md, "uid-1", "sys")
    name = f"paitient-gateway.{md.namespace}.chat"
    assert role_binding["metadata"]["name"] == cluster_binding["metadata"]["name"] == name
    assert role_binding["metadata"]["namespace"] == "sys"
    assert "namespace" not in cluster_binding["metadata"]
    assert role_binding["roleRef"]["name"] == KEYS_ROLE
    assert cluster_binding["roleRef"]["name"] == TENANTS_ROLE
    for binding in (role_binding, cluster_binding):
        assert binding["metadata"]["labels"][MD_UID_LABEL] == "uid-1"
        assert "ownerReferences" not in binding["metadata"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "chat", "namespace": md.namespace}
        ]


def test_only_bindings_of_deleted_deployments_are_deleted() -> None:
    alive, gone = make_md("alive").obj(), make_md("gone").obj()
    bindings = [
        *build_gateway_cross_namespace_bindings(alive, "uid-alive", "sys"),
        *build_gateway_cross_namespace_bindings(gone, "uid-gone", "sys"),
        {"metadata": {"name": "someone-elses", "labels": {"team": "x"}}},
        *build_gateway_identity("tenant-a", "ns-uid", "sys")[2:],  # a namespace's: never
    ]
    doomed = gateway_bindings_to_delete(bindings, ["uid-alive"])
    assert [b["metadata"]["labels"][MD_UID_LABEL] for b in doomed] == ["uid-gone", "uid-gone"]
