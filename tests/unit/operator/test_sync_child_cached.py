"""sync_child with a watch-cache copy: no GET, and a stale cache still converges."""

from __future__ import annotations

from typing import Any

from paitient_common.kubeapi import KubeError
from paitient_operator.children import sync_child

DESIRED = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "b", "labels": {"a": "1"}},
    "subjects": [{"kind": "ServiceAccount", "name": "m", "namespace": "ns"}],
}


class InMemoryKube:
    """Holds objects by name and records every call."""

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self.objects = dict(objects or {})
        self.calls: list[str] = []

    def get(self, api_version: str, kind: str, name: str, **_: Any) -> Any:
        self.calls.append("get")
        return self.objects.get(name)

    def create(self, obj: dict[str, Any]) -> Any:
        self.calls.append("create")
        if obj["metadata"]["name"] in self.objects:
            raise KubeError(409, "AlreadyExists", "exists")
        self.objects[obj["metadata"]["name"]] = obj
        return obj

    def patch(self, api_version: str, kind: str, name: str, patch: Any, **_: Any) -> Any:
        self.calls.append("patch")
        self.objects[name] = {**self.objects[name], **patch}
        return self.objects[name]


def test_a_cached_copy_that_matches_costs_no_request() -> None:
    kube = InMemoryKube({"b": DESIRED})
    assert sync_child(kube, DESIRED, cached=DESIRED)[0] == "unchanged"  # type: ignore[arg-type]
    assert kube.calls == []


def test_absent_in_the_cache_is_created_without_a_get() -> None:
    kube = InMemoryKube()
    assert sync_child(kube, DESIRED, cached=None)[0] == "created"  # type: ignore[arg-type]
    assert kube.calls == ["create"]


def test_a_stale_cache_that_missed_a_creation_falls_back_to_the_api() -> None:
    live = {**DESIRED, "subjects": []}  # exists, and differs
    kube = InMemoryKube({"b": live})
    outcome, obj = sync_child(kube, DESIRED, cached=None)  # type: ignore[arg-type]
    assert outcome == "updated" and obj["subjects"] == DESIRED["subjects"]
    assert kube.calls == ["create", "get", "patch"]


def test_without_a_cache_it_reads_the_api() -> None:
    kube = InMemoryKube({"b": DESIRED})
    assert sync_child(kube, DESIRED)[0] == "unchanged"  # type: ignore[arg-type]
    assert kube.calls == ["get"]
