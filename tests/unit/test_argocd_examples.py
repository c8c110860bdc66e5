"""The Argo CD examples (examples/argocd/): each Application is valid for Argo CD's own CRD
(v3.6, from the Go module proxy), points at what exists in this repository, orders its syncs
(the chart before the tenants; inside the chart the CRDs first), and the chart renders with its
values; the Tenant is valid for the Tenant CRD."""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from tests.unit.chart_schemas import validate
from tests.unit.test_helm_chart import REPO, by_kind, render

EXAMPLES = REPO / "examples" / "argocd"


def _load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _wave(app: Any) -> int:
    return int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])


def test_every_application_is_valid_and_points_at_this_repository() -> None:
    for name in ("application.yaml", "tenants-application.yaml", "root-application.yaml"):
        app = _load(name)
        validate(app, name)
        path = app["spec"]["source"]["path"]
        assert (REPO / path).is_dir(), f"{name}: {path}"


def test_the_chart_syncs_before_the_tenants_and_its_crds_before_the_rest() -> None:
    chart, tenants = _load("application.yaml"), _load("tenants-application.yaml")
    assert _wave(chart) < _wave(tenants)
    included = _load("root-application.yaml")["spec"]["source"]["directory"]["include"]
    assert "application.yaml" in included and "tenants-application.yaml" in included
    assert "ServerSideApply=true" in chart["spec"]["syncPolicy"]["syncOptions"]
    objects = render(chart["spec"]["source"]["helm"]["valuesObject"])
    for obj in objects:
        annotations = obj["metadata"].get("annotations") or {}
        expected = "-1" if obj["kind"] == "CustomResourceDefinition" else None
        assert annotations.get("argocd.argoproj.io/sync-wave") == expected, obj["kind"]
        validate(obj, f"{obj['kind']}/{obj['metadata']['name']}")
    assert by_kind(objects, "PrometheusRule") and by_kind(objects, "ServiceMonitor")


def test_the_tenant_example_is_valid_for_the_tenant_crd() -> None:
    crd = yaml.safe_load((REPO / "crds" / "tenants.paitient.ai.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    tenants = sorted((EXAMPLES / "tenants").glob("*.yaml"))
    assert tenants
    for path in tenants:
        tenant = yaml.safe_load(path.read_text())
        assert (tenant["apiVersion"], tenant["kind"]) == ("paitient.ai/v1alpha1", "Tenant")
        jsonschema.validate(tenant, version["schema"]["openAPIV3Schema"])
