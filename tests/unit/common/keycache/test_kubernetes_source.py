"""What the key source watches: the front door (no deployment) watches no ModelDeployment, so
it never lists every one in the cluster; a gateway watches only its own."""

from __future__ import annotations

from paitient_common.keycache.kubernetes_source import KubernetesKeySource
from paitient_common.kubeasync import Query


def queries(deployment: str) -> dict[str, Query]:
    return KubernetesKeySource(None, "paitient-system", "tenant-a", deployment).queries()


def test_a_gateway_watches_its_own_deployment_by_name() -> None:
    watched = queries("chat")["deployment"]
    assert (watched.kind, watched.namespace, watched.field_selector) == (
        "ModelDeployment",
        "tenant-a",
        "metadata.name=chat",
    )


def test_the_front_door_watches_no_deployment() -> None:
    watched = queries("")
    assert "deployment" not in watched
    assert watched["keys"].label_selector == "paitient.ai/api-keys=true"
    assert watched["pepper"].field_selector == "metadata.name=paitient-api-key-pepper"
    assert watched["tiers"].field_selector == "metadata.name=paitient-tiers"
    assert watched["tenants"].namespace is None
