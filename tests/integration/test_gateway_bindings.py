"""``paitient_operator.gateway_bindings`` against the API server: the bindings outside a
ModelDeployment's namespace go when it goes, and only its own (by uid), never those of a new
deployment of the same name. Called directly; the session's operator only refuses the one
ModelDeployment made here (unencrypted storage), so it writes no binding of its own."""

from __future__ import annotations

from typing import Any

from paitient_common.kubeapi import Kube
from paitient_operator.builders.gateway_rbac import build_gateway_cross_namespace_bindings
from paitient_operator.gateway_bindings import delete_gateway_bindings, sweep_gateway_bindings
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.unit.operator.factories import make_md

RBAC = "rbac.authorization.k8s.io/v1"
SYSTEM = "paitient-system"


def _create_bindings(kube: Kube, namespace: str, name: str, uid: str) -> None:
    md = make_md(name).namespace(namespace).obj()
    for binding in build_gateway_cross_namespace_bindings(md, uid, SYSTEM):
        kube.create(binding)


def _bindings(kube: Kube, namespace: str, name: str) -> list[dict[str, Any] | None]:
    binding = f"paitient-gateway.{namespace}.{name}"
    return [
        kube.get(RBAC, "RoleBinding", binding, namespace=SYSTEM),
        kube.get(RBAC, "ClusterRoleBinding", binding),
    ]


def test_a_deleted_deployments_bindings_go_and_a_namesakes_stay(
    operator: OperatorProcess, kube: Kube, namespace: str
) -> None:
    _create_bindings(kube, namespace, "m", uid="uid-of-the-new-m")
    assert delete_gateway_bindings(kube, SYSTEM, namespace, "m", uid="uid-of-the-old-m") == 0
    assert all(b is not None for b in _bindings(kube, namespace, "m"))
    assert delete_gateway_bindings(kube, SYSTEM, namespace, "m", uid="uid-of-the-new-m") == 2
    assert _bindings(kube, namespace, "m") == [None, None]
    assert delete_gateway_bindings(kube, SYSTEM, namespace, "m", uid="uid-of-the-new-m") == 0


def test_the_sweep_deletes_the_bindings_of_deployments_that_no_longer_exist(
    operator: OperatorProcess, kube: Kube, namespace: str
) -> None:
    kube.create(make_md("alive").namespace(namespace).storage("5Gi", "plain-local").manifest())
    alive = wait_for(
        lambda: (kube.get("paitient.ai/v1alpha1", "ModelDeployment", "alive", namespace=namespace) or {})
        .get("status", {})
        .get("phase")
        == "Failed"
        and kube.get("paitient.ai/v1alpha1", "ModelDeployment", "alive", namespace=namespace),
        what="the operator to refuse it (and make nothing)",
    )  # fmt: skip
    _create_bindings(kube, namespace, "alive", uid=alive["metadata"]["uid"])
    _create_bindings(kube, namespace, "ghost", uid="uid-of-a-deleted-deployment")
    assert sweep_gateway_bindings(kube, SYSTEM) >= 2
    assert _bindings(kube, namespace, "ghost") == [None, None]
    assert all(b is not None for b in _bindings(kube, namespace, "alive"))
    sweep_gateway_bindings(kube, SYSTEM)
    assert all(b is not None for b in _bindings(kube, namespace, "alive"))
    for binding in _bindings(kube, namespace, "alive"):  # not the operator's: ours to remove
        assert binding is not None
        meta = binding["metadata"]
        kube.delete(RBAC, binding["kind"], meta["name"], namespace=meta.get("namespace"))
