"""Which deployments a change concerns (controller.owners, pure), and what the cache view
remembers of the Secrets no cache watches (cache/view.py)."""

from __future__ import annotations

from typing import Any

from paitient_operator.cache import watched as w
from paitient_operator.cache.store import ClusterCache
from paitient_operator.cache.view import CacheView
from paitient_operator.controller import owners


def test_a_childs_pods_and_an_autoscalers_changes_concern_their_deployment() -> None:
    ref = {"kind": "ModelDeployment", "name": "m", "controller": True}
    child = {"metadata": {"name": "m", "namespace": "ns", "ownerReferences": [ref]}}
    assert owners(w.SERVICES, child) == [("ns", "m")]
    stranger = {"metadata": {"name": "x", "namespace": "ns", "ownerReferences": [
        {"kind": "ReplicaSet", "name": "x", "controller": True}]}}  # fmt: skip
    assert owners(w.DEPLOYMENTS, stranger) == []
    pod = {"metadata": {"name": "m-1", "namespace": "ns",
                        "labels": {"paitient.ai/modeldeployment": "m"}}}  # fmt: skip
    assert owners(w.PODS, pod) == [("ns", "m")]
    hpa = {"metadata": {"name": "h", "namespace": "ns"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "m"}}}  # fmt: skip
    assert owners(w.AUTOSCALERS, hpa) == [("ns", "m")]
    on_md = {"metadata": {"name": "h2", "namespace": "ns"},
             "spec": {"scaleTargetRef": {"kind": "ModelDeployment", "name": "m"}}}  # fmt: skip
    assert owners(w.AUTOSCALERS, on_md) == [("ns", "m")]  # the native autoscaler yields to it
    scaled = {
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {"scaleTargetRef": {"name": "m"}},
    }
    assert owners(w.SCALED_OBJECTS, scaled) == [("ns", "m")]  # KEDA's default kind: Deployment
    job = {"metadata": {"name": "j", "namespace": "ns"},
           "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "m"}}}  # fmt: skip
    assert owners(w.AUTOSCALERS, job) == []
    md = {"metadata": {"name": "m", "namespace": "ns"}}
    assert owners(w.MODEL_DEPLOYMENTS, md) == [("ns", "m")]
    legacy = {"metadata": {"name": "paitient-gateway.ns.m", "labels": {
        "paitient.ai/modeldeployment": "m", "paitient.ai/modeldeployment-namespace": "ns"}}}  # fmt: skip
    assert owners(w.CLUSTER_ROLE_BINDINGS, legacy) == [("ns", "m")]


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_secret_is_remembered_for_a_while_then_read_again() -> None:
    clock = Clock()
    view = CacheView(ClusterCache([w.MODEL_DEPLOYMENTS]), remember_seconds=300, clock=clock)
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "m-tls", "namespace": "ns"}}  # fmt: skip
    assert view.live(secret) is False  # never seen: ask the API
    view.written(secret)
    assert view.live(secret) == secret
    clock.now = 301
    assert view.live(secret) is False  # too old to trust: read it again
    view.fetched(secret)
    assert view.live(secret) == secret
    view.forget(secret)
    assert view.live(secret) is False
