"""The pydantic models refuse what the CRD's CEL rules refuse, and the examples are valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from paitient_common.resources.crd import modeldeployment_crd
from paitient_common.resources.modeldeployment import ModelDeployment, parse_model_deployment
from paitient_common.resources.shared import InvalidResource
from tests.unit.operator.factories import make_md
from tests.unit.operator.schema_check import validate

EXAMPLES = sorted((Path(__file__).resolve().parents[4] / "examples").glob("modeldeployment-*.yaml"))


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = modeldeployment_crd()["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    return schema


def _invalid(manifest: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ModelDeployment.model_validate(manifest)


def test_examples_exist_and_are_valid() -> None:
    assert {p.name for p in EXAMPLES} >= {"modeldeployment-gpu.yaml", "modeldeployment-cpu.yaml"}
    for path in EXAMPLES:
        manifest = yaml.safe_load(path.read_text())
        assert validate(manifest, _schema()) == [], path.name
        md = ModelDeployment.model_validate(manifest)  # the CEL mirrors
        assert md.namespace == "tenant-demo"
        assert md.spec.storage.storage_class_name == "encrypted-local"


def test_examples_cover_gpu_and_cpu() -> None:
    by_name = {p.name: ModelDeployment.model_validate(yaml.safe_load(p.read_text()))
               for p in EXAMPLES}  # fmt: skip
    assert by_name["modeldeployment-gpu.yaml"].spec.gpu_count == 1
    assert by_name["modeldeployment-cpu.yaml"].spec.use_gpu is False


def test_factory_output_validates_against_the_crd() -> None:
    for factory in (
        make_md("a"),
        make_md("b").gpus(4).product("NVIDIA-A100-SXM4-80GB").replicas(3),
        make_md("c").cpu_only().resources(cpu="2", memory="8Gi"),
        make_md("d").uri("pvc://weights/llama").allow("x", "y").rate_limits(10, 1000),
        make_md("e").uri("s3://my-bucket/models/x").quantization("awq").max_model_len(2048),
    ):
        assert validate(factory.manifest(), _schema()) == []
        assert validate(factory.body(), _schema()) == []


def test_wire_format_is_camel_case_and_round_trips() -> None:
    md = make_md("a").token_secret("hf").gpus(2).obj()
    wire = md.to_wire()
    assert wire["spec"]["useGpu"] is True
    assert wire["spec"]["model"]["tokenSecretRef"] == {"name": "hf", "key": "token"}
    assert ModelDeployment.model_validate(wire) == md


def test_exactly_one_model_source() -> None:
    both = make_md("a").manifest()
    both["spec"]["model"]["uri"] = "pvc://c/p"
    _invalid(both, "exactly one of model.name")
    neither = make_md("a").manifest()
    neither["spec"]["model"] = {"revision": "main"}
    _invalid(neither, "exactly one of model.name")


@pytest.mark.parametrize(
    "uri", ["http://x/y", "file:///etc", "/models/x", "pvc:///path", "s3://A/x"]
)
def test_uri_must_be_pvc_or_s3(uri: str) -> None:
    _invalid(make_md("a").uri(uri).manifest(), "model.uri must")


@pytest.mark.parametrize(
    "uri",
    [
        "pvc://tiny-model/../../etc",  # what a probe got accepted: the claim's mount, left
        "pvc://w/..",
        "pvc://w/a/./b",
        "pvc://w//etc",  # an empty segment: joined, an absolute path
        "pvc://w/%2e%2e/etc",  # encoded dots
        "pvc://w/a\\..\\b",
        "pvc://w/a b",
        "s3://bucket/../other-bucket",
        "s3://bucket//x",
    ],
)
def test_a_uri_path_never_leaves_its_claim_or_bucket(uri: str) -> None:
    _invalid(make_md("a").uri(uri).manifest(), "no '.' or '..' segment and no empty one")


@pytest.mark.parametrize(
    "uri",
    ["pvc://w/org/model/", "pvc://w/.cache/m", "pvc://w/m...v2", "pvc://w/a..b", "s3://b-1/x/y"],
)
def test_dots_inside_a_segment_are_names_not_tricks(uri: str) -> None:
    assert make_md("a").uri(uri).obj().spec.model.uri == uri


def test_uri_sources() -> None:
    pvc = make_md("a").uri("pvc://weights/org/model/").obj().spec.model
    assert pvc.pvc_claim_and_path() == ("weights", "org/model")
    assert pvc.is_remote is False
    assert make_md("a").uri("s3://bucket/x").obj().spec.model.is_remote is True
    assert make_md("a").obj().spec.model.is_remote is True


def test_gpu_only_with_use_gpu() -> None:
    manifest = make_md("a").cpu_only().manifest()
    manifest["spec"]["gpu"] = {"count": 1}
    _invalid(manifest, "gpu may only be set when useGpu is true")


def test_gpu_count_defaults() -> None:
    assert make_md("a").obj().spec.gpu_count == 1  # useGpu without gpu
    assert make_md("a").gpus(2).product("X").cpu_only().obj().spec.gpu_count == 0
    assert make_md("a").gpus(8).obj().spec.gpu_count == 8


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda f: f.gpus(0), "count"),
        (lambda f: f.gpus(9), "count"),
        (lambda f: f.replicas(-1), "replicas"),
        (lambda f: f.gpu_memory_utilization(0), "gpuMemoryUtilization"),
        (lambda f: f.gpu_memory_utilization(1.01), "gpuMemoryUtilization"),
        (lambda f: f.max_model_len(0), "maxModelLen"),
        (lambda f: f.resources(memory="lots"), "memory"),
        (lambda f: f.storage(size="-1Gi"), "size"),
        (lambda f: f.dtype("int4"), "dtype"),
        (lambda f: f.quantization("magic"), "quantization"),
        (lambda f: f.model("../../etc/passwd"), "name"),
    ],
)
def test_bounds(mutate: Any, field: str) -> None:
    manifest = mutate(make_md("a")).manifest()
    _invalid(manifest, field)
    assert validate(manifest, _schema()) != [], "the CRD refuses it too"


def test_zero_replicas_and_quantities_are_fine() -> None:
    md = make_md("a").replicas(0).resources(cpu="500m", memory="1.5Gi").obj()
    assert md.spec.replicas == 0


@pytest.mark.parametrize("name", ["UPPER", "1starts-with-digit", "a" * 64, "dots.not.ok"])
def test_name_must_be_a_dns_label(name: str) -> None:
    manifest = make_md(name).manifest()
    _invalid(manifest, "DNS-1035")
    assert validate(manifest, _schema()) != [], "the CRD refuses it too"


def test_unknown_fields_are_refused_in_python() -> None:
    manifest = make_md("a").manifest()
    manifest["spec"]["gpus"] = 2  # typo of gpu
    _invalid(manifest, "gpus")


def test_parse_turns_errors_into_invalid_resource_and_accepts_kopf_bodies() -> None:
    body = make_md("a").body()
    body["status"] = {"kopf": {"progress": {}}, "phase": "Ready"}  # kopf's own status fields
    md = parse_model_deployment(body)
    assert md.status is not None and md.status.phase == "Ready"
    broken = make_md("a").manifest()
    broken["spec"]["replicas"] = -3
    with pytest.raises(InvalidResource, match=r"spec\.replicas"):
        parse_model_deployment(broken)


def test_served_model_name() -> None:
    assert make_md("a").obj().served_model_name == "ZimaBlueAI/HuatuoGPT-o1-8B"
    assert make_md("my-model").uri("pvc://w/m").obj().served_model_name == "my-model"


AUTOSCALING_REFUSALS = [
    ({"replicas": 2, "autoscaling": {"maxReplicas": 3}},
     "replicas and autoscaling cannot both be set"),
    ({"autoscaling": {"minReplicas": 4, "maxReplicas": 3}},
     "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas"),
    ({"autoscaling": {"engine": "hpa", "minReplicas": 0, "maxReplicas": 3}},
     "autoscaling.minReplicas must be at least 1 with engine hpa"),
    ({"autoscaling": {"maxReplicas": 3, "target": {"value": 0}}}, "target.value"),
    ({"autoscaling": {"maxReplicas": 3, "target": {"value": -1}}}, "target.value"),
    ({"autoscaling": {"maxReplicas": 0}}, "maxReplicas"),
    ({"autoscaling": {"maxReplicas": 3, "scaleDownDelay": "soon"}}, "scaleDownDelay"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "named"), AUTOSCALING_REFUSALS)
def test_bad_autoscaling_is_refused_naming_the_field(spec: dict[str, Any], named: str) -> None:
    """The models refuse what the CRD refuses (CEL and bounds), and the message names the
    field; tests/integration/test_autoscaling.py sends the same to the API server."""
    manifest = make_md("m").manifest()
    manifest["spec"].update(spec)
    with pytest.raises(InvalidResource, match=named):
        parse_model_deployment(manifest)


def test_autoscaling_defaults() -> None:
    md = make_md("m").autoscaling(3).obj()
    assert md.spec.replicas is None and md.spec.autoscaling is not None
    a = md.spec.autoscaling
    assert (a.engine, a.min_replicas, a.target.metric, a.target.value) == (
        "native",
        1,
        "inFlight",
        10,
    )
    assert (a.scale_down_delay, a.stabilization_window) == ("5m", "30s")
    assert md.spec.most_replicas == 3 and make_md("n").replicas(2).obj().spec.most_replicas == 2
