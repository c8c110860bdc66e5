"""What the key source asks the API for: the front door (no deployment) reads no
ModelDeployment, so it never lists every one in the cluster."""

from __future__ import annotations

from typing import Any, cast

from paitient_common.kubeapi import Kube
from paitient_gateway.keysource import KubernetesKeySource


class RecordingKube:
    """Answers every read with nothing and remembers what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def get(self, api_version: str, kind: str, name: str, **kw: Any) -> None:
        self.calls.append(("get", kind, name))

    def list(self, api_version: str, kind: str, **kw: Any) -> list[Any]:
        self.calls.append(("list", kind, None))
        return []


def kinds_read(deployment: str) -> list[tuple[str, str, str | None]]:
    kube = RecordingKube()
    source = KubernetesKeySource(cast(Kube, kube), "paitient-system", "tenant-a", deployment)
    source.read()
    return kube.calls


def test_a_gateway_reads_its_own_deployment() -> None:
    assert ("get", "ModelDeployment", "chat") in kinds_read("chat")


def test_the_front_door_reads_no_deployment() -> None:
    calls = kinds_read("")
    assert not [c for c in calls if c[1] == "ModelDeployment"]
    assert ("list", "Secret", None) in calls and ("list", "Tenant", None) in calls
