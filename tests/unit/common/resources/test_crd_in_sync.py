"""The CRD in crds/ is exactly what the models generate, and it is a structural schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from paitient_common.resources import crd as crd_module
from paitient_common.resources.crd import modeldeployment_crd, rendered_files

REPO = Path(__file__).resolve().parents[4]
CRD_FILE = REPO / "crds" / "modeldeployments.paitient.ai.yaml"

# Keys the apiextensions JSONSchemaProps type knows; anything else is refused by the server.
ALLOWED_KEYS = {
    "type", "description", "properties", "required", "items", "additionalProperties",
    "default", "enum", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
    "maxProperties", "nullable", "anyOf", "allOf", "oneOf", "not", "example",
    "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
}  # fmt: skip


def test_every_generated_crd_matches_the_checked_in_file() -> None:
    for name, text in rendered_files().items():
        path = REPO / "crds" / name
        assert path.exists(), f"{path} missing: run python -m paitient_common.resources.crd"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is out of date: run python -m paitient_common.resources.crd"
        )


def test_check_mode_reports_drift_and_write_mode_fixes_it(tmp_path: Path) -> None:
    assert crd_module.main(["--check", "--output", str(tmp_path)]) == 1  # missing counts as drift
    assert crd_module.main(["--output", str(tmp_path)]) == 0
    assert crd_module.main(["--check", "--output", str(tmp_path)]) == 0
    target = tmp_path / CRD_FILE.name
    target.write_text(target.read_text().replace("shortNames", "shortNamez"))
    assert crd_module.main(["--check", "--output", str(tmp_path)]) == 1


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, node)]
    for key, sub in node.get("properties", {}).items():
        nodes += _walk(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        nodes += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        nodes += _walk(node["additionalProperties"], f"{path}{{}}")
    for branch in node.get("anyOf", []):
        nodes += _walk(branch, f"{path}|")
    return nodes


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_schema_is_structural() -> None:
    for path, node in _walk(_schema()):
        where = path or "<root>"
        assert set(node) <= ALLOWED_KEYS, f"{where}: unknown keys {set(node) - ALLOWED_KEYS}"
        assert "$ref" not in node and "$defs" not in node, where
        in_branch = path.endswith("|")
        if not in_branch:
            assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{where}: no type"
        if "anyOf" in node:
            # Only the int-or-string form, whose branches carry nothing but value validations.
            assert node.get("x-kubernetes-int-or-string"), f"{where}: anyOf outside int-or-string"
            for branch in node["anyOf"]:
                assert not {"description", "default", "nullable", "properties"} & set(branch)
        assert node.get("additionalProperties") is not False, f"{where}: additionalProperties false"
        assert not (node.get("properties") and "additionalProperties" in node), where
        assert node.get("uniqueItems") is not True, where
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert key not in node or isinstance(node[key], bool), f"{where}: {key} not bool"
        assert not ("default" in node and node["default"] is None), f"{where}: null default"
        scalar_item = path.endswith("[]") and node.get("type") != "object"
        in_metadata = path.startswith(".metadata")  # the API server forbids descriptions there
        if not in_branch and not scalar_item and not in_metadata:
            assert node.get("description"), f"{where}: no description (kubectl explain)"


def test_metadata_only_restricts_the_name() -> None:
    # The API server refuses any other metadata schema ("metadata is implicitly specified").
    metadata = _schema()["properties"]["metadata"]
    assert set(metadata) == {"type", "properties"}
    assert set(metadata["properties"]) <= {"name", "generateName"}
    name = metadata["properties"]["name"]
    assert name["maxLength"] == 63
    assert name["pattern"] == "^[a-z]([-a-z0-9]*[a-z0-9])?$"


def test_optional_fields_are_nullable_and_defaults_are_set() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    assert spec["model"]["properties"]["uri"]["nullable"] is True
    assert spec["gpu"]["nullable"] is True
    assert spec["runtime"]["properties"]["quantization"]["nullable"] is True
    # No default: "replicas or autoscaling" can only be told apart if replicas stays unset.
    assert "default" not in spec["replicas"] and spec["replicas"]["nullable"] is True
    assert spec["useGpu"]["default"] is True
    assert spec["runtime"]["default"] == {}  # nested defaults get applied
    assert spec["runtime"]["properties"]["gpuMemoryUtilization"] == {
        **spec["runtime"]["properties"]["gpuMemoryUtilization"],
        "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "default": 0.9,
    }  # fmt: skip
    assert spec["gpu"]["properties"]["count"]["minimum"] == 1
    assert spec["gpu"]["properties"]["count"]["maximum"] == 8
    assert spec["replicas"]["minimum"] == 0
    assert spec["runtime"]["properties"]["maxModelLen"]["minimum"] == 1
    assert "pattern" in spec["resources"]["properties"]["memory"]
    assert spec["runtime"]["properties"]["dtype"]["enum"] == [
        "auto", "half", "float16", "bfloat16", "float", "float32",
    ]  # fmt: skip
    assert "awq" in spec["runtime"]["properties"]["quantization"]["enum"]


def test_cel_rules_are_in_place() -> None:
    schema = _schema()
    spec = schema["properties"]["spec"]

    def rules(node: dict[str, Any]) -> list[str]:
        return [v["rule"] for v in node.get("x-kubernetes-validations", [])]

    assert "has(self.name) != has(self.uri)" in rules(spec["properties"]["model"])
    assert "self.useGpu || !has(self.gpu)" in rules(spec)
    uri_rules = rules(spec["properties"]["model"]["properties"]["uri"])
    assert "self.startsWith('pvc://') || self.startsWith('s3://')" in uri_rules
    for node in (spec, spec["properties"]["model"]):
        for rule in node["x-kubernetes-validations"]:
            assert rule["message"], "every rule explains itself"


def test_names_subresources_and_columns() -> None:
    crd = modeldeployment_crd()
    assert crd["metadata"]["name"] == "modeldeployments.paitient.ai"
    assert crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["md"]
    assert names["categories"] == ["paitient"]
    (version,) = crd["spec"]["versions"]
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True  # kopf writes status.kopf
    default_columns = [
        c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c
    ]
    # A model from pvc:// or s3:// shows in `kubectl get md` as well as a Hugging Face one.
    assert default_columns == ["Model", "URI", "GPUs", "Desired", "Ready", "Phase", "Age"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
