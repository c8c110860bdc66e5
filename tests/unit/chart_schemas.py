"""Validating what the chart renders: core kinds against the Kubernetes schemas
(``kubernetes-validate``, strict), other projects' kinds against their own CRDs (cert-manager,
the Prometheus Operator, the Gateway API: pinned, fetched from the Go module proxy, cached)."""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from paitient_localcluster.upstream.crd_modules import (
    ARGO_CD,
    CERT_MANAGER,
    GATEWAY_API,
    PROMETHEUS_OPERATOR,
    CrdModule,
)

KUBERNETES_VERSION = "1.34.0"  # the local control plane's
Obj = dict[str, Any]
MODULES: dict[str, CrdModule] = {
    "cert-manager.io": CERT_MANAGER,
    "monitoring.coreos.com": PROMETHEUS_OPERATOR,
    "gateway.networking.k8s.io": GATEWAY_API,
    "argoproj.io": ARGO_CD,
}


@functools.cache
def crd_schema(api_version: str, kind: str) -> Obj:
    """The openAPIV3Schema of ``kind`` at ``api_version`` in its project's own CRD."""
    group, _, version = api_version.partition("/")
    directory = MODULES[group].fetch()
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] != kind:
            continue
        (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
        schema: Obj = _strict(served["schema"]["openAPIV3Schema"])
        return schema
    raise LookupError(f"no CRD of {kind} in {MODULES[group].module}")


def _strict(node: Any) -> Any:
    """The schema as the API server applies it, for jsonschema: a field the schema does not
    know is refused (the API server would prune it silently: a chart bug either way), and Go's
    mid-pattern global flags (``^(?i)...``; RE2 takes them anywhere) moved to the front, where
    Python's ``re`` requires them."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        pattern = out.get("pattern")
        if isinstance(pattern, str) and (flags := re.match(r"^\^(\(\?[a-z]+\))", pattern)):
            out["pattern"] = flags.group(1) + "^" + pattern[flags.end() :]
        if (
            isinstance(out.get("properties"), dict)
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def validate(obj: Obj, where: str) -> None:
    """Fail the test with the path and message of the first schema violation."""
    group = obj["apiVersion"].partition("/")[0]
    if group in MODULES:
        try:
            jsonschema.validate(obj, crd_schema(obj["apiVersion"], obj["kind"]))
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{where} breaks its CRD's schema at {list(exc.path)}: {exc.message}")
        return
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{where} is invalid at {path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"{where}: {exc.message}")
