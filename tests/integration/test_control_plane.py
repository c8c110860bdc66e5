"""Proof that the local control plane is a real one: scheduling, GPUs, garbage collection,
Pod Security admission and custom resources behave as on any Kubernetes cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from paitient_common.kubeapi import Kube
from paitient_localcluster.controlplane.kubeconfig import write_kubeconfig
from paitient_localcluster.simulated.sa_kubeconfig import mint_token, service_account_kubeconfig
from tests.integration.waiting import wait_for

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _pod(name: str, gpus: int, tolerate: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "tolerations": [GPU_TOLERATION] if tolerate else [],
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
        },
    }


def _scheduled_condition(core: client.CoreV1Api, ns: str, name: str) -> Any:
    pod = core.read_namespaced_pod(name, ns)
    return next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)


def test_gpu_deployment_is_scheduled_on_a_gpu_node_and_becomes_ready(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gpu-app"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "gpu-app"}},
            "template": {
                "metadata": {"labels": {"app": "gpu-app"}},
                "spec": _pod("x", gpus=1, tolerate=True)["spec"],
            },
        },
    }
    apps.create_namespaced_deployment(namespace, deployment)
    rs = wait_for(lambda: apps.list_namespaced_replica_set(namespace).items, what="a ReplicaSet")
    assert rs[0].metadata.owner_references[0].name == "gpu-app"

    def ready_pod() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector="app=gpu-app").items
        ready = [
            p for p in pods
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]  # fmt: skip
        return ready[0] if ready else None

    pod = wait_for(ready_pod, timeout=60, what="a Ready pod")
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip


def test_gpu_pod_without_toleration_stays_pending_with_the_schedulers_reason(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("no-toleration", gpus=1, tolerate=False))
    cond = wait_for(
        lambda: _scheduled_condition(core, namespace, "no-toleration"), what="PodScheduled"
    )
    assert cond.status == "False"
    assert cond.reason == "Unschedulable"
    assert "untolerated taint" in cond.message and "nvidia.com/gpu" in cond.message
    assert core.read_namespaced_pod("no-toleration", namespace).status.phase == "Pending"


def test_pod_asking_for_more_gpus_than_any_node_has_stays_pending(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("nine-gpus", gpus=9, tolerate=True))
    cond = wait_for(lambda: _scheduled_condition(core, namespace, "nine-gpus"), what="PodScheduled")
    # The scheduler's verdict is what keeps it pending: no node, no phase change.
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in cond.message
    pod = core.read_namespaced_pod("nine-gpus", namespace)
    assert pod.spec.node_name is None and pod.status.phase == "Pending"


def test_deleting_a_deployment_garbage_collects_its_replicasets_and_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "doomed"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "doomed"}},
                "template": {
                    "metadata": {"labels": {"app": "doomed"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox"}]},
                },
            },
        },
    )
    wait_for(lambda: len(core.list_namespaced_pod(namespace).items) == 2, timeout=60, what="2 pods")
    apps.delete_namespaced_deployment("doomed", namespace)
    wait_for(
        lambda: not apps.list_namespaced_replica_set(namespace).items, timeout=60, what="RS gone"
    )
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, timeout=60, what="pods gone")


def test_pod_security_restricted_rejects_privileged_and_admits_compliant_pods(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "main", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, privileged)
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert 'privileged (container "main" must not set securityContext.privileged=true)' in message

    compliant = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "compliant"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "securityContext": {
                        "runAsUser": 1000,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    created = core.create_namespaced_pod(namespace, compliant)
    # Admitted means stored: the API server hands the same object back on a read.
    stored = core.read_namespaced_pod("compliant", namespace)
    assert stored.metadata.uid == created.metadata.uid
    assert stored.spec.containers[0].security_context.capabilities.drop == ["ALL"]


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.probe.paitient.ai"},
    "spec": {
        "group": "probe.paitient.ai",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_custom_resources_can_be_listed_watched_and_patched_including_status(
    api_client: client.ApiClient, namespace: str
) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    try:
        ext.create_custom_resource_definition(CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition(CRD["metadata"]["name"])
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    wait_for(established, what="CRD Established")
    custom = client.CustomObjectsApi(api_client)
    args = ("probe.paitient.ai", "v1", namespace, "widgets")
    wait_for(lambda: _can_list(custom, args), what="the new resource to be served")
    custom.create_namespaced_custom_object(
        *args,
        {
            "apiVersion": "probe.paitient.ai/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 1},
        },
    )
    assert [
        o["metadata"]["name"] for o in custom.list_namespaced_custom_object(*args)["items"]
    ] == ["w1"]

    custom.patch_namespaced_custom_object(*args, "w1", {"spec": {"size": 2}})
    custom.patch_namespaced_custom_object_status(*args, "w1", {"status": {"phase": "Ready"}})
    obj = custom.get_namespaced_custom_object(*args, "w1")
    assert obj["spec"]["size"] == 2
    assert obj["status"]["phase"] == "Ready"
    # A status written through the main resource is ignored: the subresource is real.
    custom.patch_namespaced_custom_object(*args, "w1", {"status": {"phase": "Hacked"}})
    assert custom.get_namespaced_custom_object(*args, "w1")["status"]["phase"] == "Ready"

    # The watch ends at the event it is waiting for; the server-side timeout only bounds it.
    stream = watch.Watch()
    seen = None
    for event in stream.stream(
        custom.list_namespaced_custom_object, *args, resource_version="0", timeout_seconds=30
    ):
        seen = (event["type"], event["object"]["metadata"]["name"])
        if seen == ("ADDED", "w1"):
            stream.stop()
    assert seen == ("ADDED", "w1")


def _can_list(custom: client.CustomObjectsApi, args: tuple[str, ...]) -> bool:
    try:
        custom.list_namespaced_custom_object(*args)
    except ApiException:
        return False
    return True


def test_a_minted_token_authenticates_as_its_service_account(
    kube: Kube, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """The data plane's TokenRequest: the API server knows the token as the account's."""
    kube.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "md-a", "namespace": namespace}}
    )  # fmt: skip
    token = mint_token(kube, namespace, "md-a", expiration_seconds=3600)
    assert token.expires_at > token.issued_at
    admin = yaml.safe_load(kubeconfig.read_text())
    path = write_kubeconfig(
        tmp_path / "md-a.kubeconfig",
        service_account_kubeconfig(admin, kubeconfig, token.token, namespace, "md-a"),
    )
    review = Kube.from_kubeconfig(str(path)).request(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )  # fmt: skip
    assert review["status"]["userInfo"]["username"] == token.user
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:md-a"
