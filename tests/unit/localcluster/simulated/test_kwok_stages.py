"""KWOK's pod stages: a model pod runs but is left not Ready (the data plane sets it from the
gateway's probe); every other pod runs Ready as with KWOK's defaults."""

from __future__ import annotations

from typing import Any

import yaml

from paitient_localcluster.simulated.kwok_stages import MODEL_POD_LABEL, kwok_config


def stages() -> dict[str, dict[str, Any]]:
    docs = kwok_config()
    assert docs[0]["kind"] == "KwokConfiguration"
    return {d["metadata"]["name"]: d["spec"] for d in docs[1:]}


def label_rule(spec: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in spec["selector"]["matchExpressions"] if "labels" in e["key"])


def ready_status(spec: dict[str, Any]) -> str:
    lines = spec["next"]["statusTemplate"].splitlines()
    index = lines.index("  type: Ready")
    return lines[index - 1].split(": ", 1)[1]


def test_model_pods_run_not_ready_and_other_pods_run_ready() -> None:
    model, other = stages()["model-pod-running"], stages()["pod-ready"]
    assert label_rule(model) == {
        "key": f'.metadata.labels["{MODEL_POD_LABEL[0]}"]',
        "operator": "In",
        "values": [MODEL_POD_LABEL[1]],
    }
    assert label_rule(other)["operator"] == "NotIn"  # NotIn also matches pods without the label
    assert ready_status(model) == '"False"' and ready_status(other) == '"True"'
    assert "phase: Running" in model["next"]["statusTemplate"]


def test_the_config_is_one_yaml_stream_kwok_can_read() -> None:
    text = yaml.safe_dump_all(kwok_config(), sort_keys=False)
    assert [d["kind"] for d in yaml.safe_load_all(text)] == ["KwokConfiguration"] + ["Stage"] * 4
    assert set(stages()) == {"pod-ready", "model-pod-running", "pod-complete", "pod-delete"}
