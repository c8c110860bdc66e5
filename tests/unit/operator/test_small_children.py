"""PVC, labels and the spec hash."""

from __future__ import annotations

from paitient_operator import builders
from paitient_operator.builders.metadata import SPEC_HASH_ANNOTATION, spec_hash, with_spec_hash
from paitient_operator.builders.pvc import build_pvc
from paitient_operator.config import OperatorConfig
from tests.unit.operator.factories import make_md


def test_pvc_uses_the_resolved_class_and_spec_size(config: OperatorConfig) -> None:
    pvc = build_pvc(make_md("a").storage(size="200Gi").obj(), config, "encrypted-local")
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == "a"
    assert pvc["spec"]["storageClassName"] == "encrypted-local"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "ownerReferences" not in pvc["metadata"]


def test_every_child_carries_the_common_labels(config: OperatorConfig) -> None:
    md = make_md("a").obj()
    children = [
        builders.build_deployment(md, config),
        builders.build_service(md, config),
        builders.build_network_policy(md, config),
        builders.build_pvc(md, config, "encrypted-local"),
    ]
    for child in children:
        meta = child["metadata"]
        assert meta["name"] == "a" and meta["namespace"] == "tenant-demo", child["kind"]
        assert meta["labels"] == builders.common_labels(md), child["kind"]
        assert "ownerReferences" not in meta, child["kind"]
    assert builders.selector_string(md) == (
        "app.kubernetes.io/name=paitient-model,paitient.ai/modeldeployment=a"
    )


def test_spec_hash_is_stable_and_sensitive(config: OperatorConfig) -> None:
    a = builders.build_deployment(make_md("a").obj(), config)
    b = builders.build_deployment(make_md("a").obj(), config)
    assert spec_hash(a) == spec_hash(b)
    changed = builders.build_deployment(make_md("a").replicas(2).obj(), config)
    assert spec_hash(a) != spec_hash(changed)


def test_with_spec_hash_annotates_without_changing_the_hash(config: OperatorConfig) -> None:
    d = builders.build_deployment(make_md("a").obj(), config)
    annotated = with_spec_hash(d)
    assert annotated["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == spec_hash(d)
    assert spec_hash(annotated) == spec_hash(d)
    assert "annotations" not in d["metadata"]  # input untouched


def test_public_surface() -> None:
    assert sorted(builders.__all__) == sorted(
        name for name in dir(builders) if name.startswith(("build_", "check_"))
        or name in {"common_labels", "endpoint_url", "selector_labels", "selector_string",
                    "spec_hash", "with_spec_hash"}
    )  # fmt: skip
