"""Children by Server-Side Apply, on the real API server: what a cluster's mutating admission
policy or another controller adds to a child stays, and a resync writes nothing."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paitient_common.kubeapi import Kube
from paitient_localcluster.controlplane import audit
from paitient_operator.children import FIELD_MANAGER
from paitient_operator.ownership import owned_fields, owns
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.prerequisites import local_audit_log
from tests.unit.operator.factories import make_md

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
DEPLOYMENT = ("apps/v1", "Deployment")
TOLERATIONS = ("spec", "template", "spec", "tolerations")
OURS = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
THEIRS = {"key": "paitient.test/dedicated", "operator": "Exists", "effect": "NoSchedule"}
SIDECAR = {"name": "log-shipper", "image": "example.invalid/log-shipper:1"}
POLICIES = "/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicies"
BINDINGS = "/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicybindings"
RESYNCS = 3
DEPLOYMENT_WRITES = {
    "apiGroups": ["apps"],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["deployments"],
}

# Appends THEIRS to the pod template's tolerations of every Deployment written in the namespace
# that has some and lacks it (the CEL type of a list entry is named after the list). Only the
# append: kube-apiserver 1.34.4 panics on a JSON patch whose value is a list of Object
# initializers (kubernetes/kubernetes#142181), which setting a whole list would need.
APPEND_TOLERATION = """[JSONPatch{
  op: "add",
  path: "/spec/template/spec/tolerations/-",
  value: Object.spec.template.spec.tolerations{
    key: "paitient.test/dedicated", operator: "Exists", effect: "NoSchedule"
  }
}]"""
HAS_TOLERATIONS_BUT_NOT_THEIRS = (
    "has(object.spec.template.spec.tolerations) && "
    "!object.spec.template.spec.tolerations.exists(t, has(t.key) && "
    't.key == "paitient.test/dedicated")'
)


@pytest.fixture
def audit_log(kubeconfig: Path) -> Path:
    return local_audit_log(kubeconfig)


@pytest.fixture
def tolerating_namespace(kube: Kube, namespace: str) -> Iterator[str]:
    """The test namespace, where a MutatingAdmissionPolicy adds a toleration to the pod
    template of every Deployment written (created, updated, applied) that tolerates something
    else already (as the operator's GPU Deployments do)."""
    name = f"add-toleration-{uuid.uuid4().hex[:6]}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1beta1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "matchConstraints": {"resourceRules": [DEPLOYMENT_WRITES]},
            "matchConditions": [
                {"name": "tolerates-but-not-theirs", "expression": HAS_TOLERATIONS_BUT_NOT_THEIRS}
            ],
            "mutations": [
                {"patchType": "JSONPatch", "jsonPatch": {"expression": APPEND_TOLERATION}}
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1beta1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    kube.request("POST", POLICIES, body=policy)
    try:
        kube.request("POST", BINDINGS, body=binding)
        try:
            # The API server loads policies from a watch of its own: wait until it mutates.
            wait_for(
                lambda: THEIRS in _tolerations(_dry_run_deployment(kube, namespace)),
                timeout=30,
                what="the policy to mutate a Deployment",
            )
            yield namespace
        finally:
            kube.request("DELETE", f"{BINDINGS}/{name}")
    finally:
        kube.request("DELETE", f"{POLICIES}/{name}")


def _dry_run_deployment(kube: Kube, namespace: str) -> dict[str, Any]:
    labels = {"app": "probe"}
    probe = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "c", "image": "example.invalid/c:1"}],
                    "tolerations": [OURS],
                },
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    return kube.request("POST", path, body=probe, query={"dryRun": "All"})


def _tolerations(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"].get("tolerations") or [])


def _deployment(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    obj = kube.get(*DEPLOYMENT, name, namespace=ns)
    assert obj is not None
    return obj


def _ready_and_settled(kube: Kube, ns: str, name: str) -> bool:
    """The ModelDeployment is Ready on its current generation and the Deployment's rollout is
    complete: one updated, ready pod, and nothing left to replace."""
    md = kube.get(*MD, name, namespace=ns) or {}
    dep = kube.get(*DEPLOYMENT, name, namespace=ns) or {}
    status, dep_status = md.get("status") or {}, dep.get("status") or {}
    pods = kube.list(
        "v1", "Pod", namespace=ns, label_selector=f"paitient.ai/modeldeployment={name}"
    )
    return (
        status.get("phase") == "Ready"
        and status.get("observedGeneration") == md["metadata"]["generation"]
        and dep_status.get("observedGeneration") == dep["metadata"]["generation"]
        and dep_status.get("updatedReplicas") == dep_status.get("readyReplicas") == 1
        and dep_status.get("replicas") == 1
        and len(pods) == 1
    )


def _operator_requests(log: Path, offset: int, ns: str) -> list[audit.AuditEvent]:
    return [
        e
        for e in audit.read_events(log, offset)
        if e.user == "paitient-operator" and e.namespace == ns
    ]


def _resync(kube: Kube, log: Path, ns: str, name: str, offset: int, rounds: int) -> None:
    """Make the operator reconcile the deployment ``rounds`` times: each touch of the
    Deployment by another writer (an annotation) is a watch event that reconciles its owner,
    which ends by listing the deployment's pods."""

    def reconciled(times: int) -> bool:
        events = _operator_requests(log, offset, ns)
        return sum(e.verb == "list" and e.resource == "pods" for e in events) >= times

    for n in range(1, rounds + 1):
        kube.patch(
            *DEPLOYMENT, name, {"metadata": {"annotations": {"touched": str(n)}}}, namespace=ns
        )
        wait_for(functools.partial(reconciled, n), what=f"reconcile {n} of {rounds}")


def _writes_to(events: list[audit.AuditEvent], resource: str, name: str) -> list[str]:
    return [
        f"{e.verb} {e.resource}/{e.subresource} {e.name}"
        for e in events
        if e.is_write and e.resource == resource and e.name == name
    ]


def test_a_toleration_added_by_admission_stays_and_a_resync_writes_nothing(
    operator: OperatorProcess, kube: Kube, tolerating_namespace: str, audit_log: Path
) -> None:
    ns = tolerating_namespace
    kube.create(
        make_md("admitted").namespace(ns).gpus(1).storage("5Gi", "encrypted-local").manifest()
    )
    wait_for(lambda: _ready_and_settled(kube, ns, "admitted"), timeout=60, what="Ready")
    # The rollout's last write is the Ready Event, posted after the status: from then on the
    # world is settled and a reconcile has nothing left to change.
    wait_for(
        lambda: any(
            e["reason"] == "Ready" and e["involvedObject"]["name"] == "admitted"
            for e in kube.list("v1", "Event", namespace=ns)
        ),
        what="the operator's Ready event",
    )
    dep = _deployment(kube, ns, "admitted")
    # The conflict this is about: the policy's entry sits in the atomic list the operator
    # applies and owns, in the operator's own write.
    assert _tolerations(dep) == [OURS, THEIRS]
    assert owns(owned_fields(dep, FIELD_MANAGER, "apps/v1"), TOLERATIONS)
    offset = audit.log_size(audit_log)
    _resync(kube, audit_log, ns, "admitted", offset, RESYNCS)
    assert [e for e in _operator_requests(audit_log, offset, ns) if e.is_write] == []
    assert _tolerations(_deployment(kube, ns, "admitted")) == [OURS, THEIRS]


def test_entries_another_writer_adds_stay_and_a_resync_writes_nothing(
    operator: OperatorProcess, kube: Kube, namespace: str, audit_log: Path
) -> None:
    """Another controller (its own field manager) adds a sidecar container (a list keyed by
    name) and a toleration (an atomic list the operator renders too) after the operator's
    write: the operator takes neither back."""
    ns = namespace
    kube.create(
        make_md("extended").namespace(ns).gpus(1).storage("5Gi", "encrypted-local").manifest()
    )
    wait_for(lambda: _ready_and_settled(kube, ns, "extended"), timeout=60, what="Ready")
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "extended", "namespace": ns},
            "spec": {"template": {"spec": {"containers": [SIDECAR], "tolerations": [OURS, THEIRS]}}},
        },
        field_manager="example-injector",
        force=True,  # the tolerations are the operator's: an atomic list has one owner
    )  # fmt: skip
    # The new pod template rolls out (the operator reconciles on every step of it).
    wait_for(lambda: _ready_and_settled(kube, ns, "extended"), timeout=90, what="rolled out")
    offset = audit.log_size(audit_log)
    _resync(kube, audit_log, ns, "extended", offset, RESYNCS)
    events = _operator_requests(audit_log, offset, ns)
    assert _writes_to(events, "deployments", "extended") == []
    pod_spec = _deployment(kube, ns, "extended")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["containers"]] == ["vllm", "gateway", "log-shipper"]
    assert pod_spec["tolerations"] == [OURS, THEIRS]


def test_a_field_the_operator_stops_rendering_is_removed(
    operator: OperatorProcess, kube: Kube, namespace: str
) -> None:
    """A merge patch could only add and change: a node selector the spec no longer asks for
    stayed on the Deployment. Applied, the field the rendering drops is released and goes."""
    ns = namespace
    kube.create(
        make_md("placed")
        .namespace(ns)
        .gpus(1)
        .product("NVIDIA-B200")
        .storage("5Gi", "encrypted-local")
        .manifest()
    )

    def node_selector() -> dict[str, str] | None:
        dep = kube.get(*DEPLOYMENT, "placed", namespace=ns)
        return None if dep is None else dep["spec"]["template"]["spec"].get("nodeSelector", {})

    wanted = {"nvidia.com/gpu.product": "NVIDIA-B200"}
    wait_for(lambda: node_selector() == wanted, what="the Deployment selecting the product")
    kube.patch(*MD, "placed", {"spec": {"gpu": {"product": None}}}, namespace=ns)
    wait_for(lambda: node_selector() == {}, what="the node selector gone")
