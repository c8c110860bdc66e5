"""The front door's pure parts: request schemas, mapping to ModelDeployments, stream translation,
idempotency table, routing."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from pydantic import ValidationError

from paitient_api import mapping, translate
from paitient_api.idempotency import IdempotencyTable
from paitient_api.openapi import DOC_PATH, render
from paitient_api.routing import GatewayRoute, Route
from paitient_api.schemas import (
    CreateDeployment,
    Generate,
    UpdateDeployment,
)
from paitient_common.errors import RequestValidationError
from paitient_common.resources.modeldeployment import parse_model_deployment


def test_a_create_request_becomes_a_model_deployment_in_the_callers_namespace() -> None:
    md = mapping.build_model_deployment(
        CreateDeployment(model_name="ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name="m", gpu_count=2),
        "tenant-a",
        "a-clinic",
    )
    assert md["metadata"] == {
        "name": "m",
        "namespace": "tenant-a",
        "annotations": {"paitient.ai/created-by": "a-clinic"},
    }
    assert md["spec"] == {
        "model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"},
        "useGpu": True,
        "replicas": 1,
        "gpu": {"count": 2},
    }


@pytest.mark.parametrize(
    ("model_name", "source"),
    [
        ("pvc://tiny-model/tiny-llama", {"uri": "pvc://tiny-model/tiny-llama"}),
        ("pvc://models", {"uri": "pvc://models"}),
        ("s3://weights-bucket/org/llama-8b", {"uri": "s3://weights-bucket/org/llama-8b"}),
        ("ZimaBlueAI/HuatuoGPT-o1-8B", {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}),
    ],
)
def test_a_model_uri_becomes_spec_model_uri_and_reads_back_as_the_model_name(
    model_name: str, source: dict[str, str]
) -> None:
    request = CreateDeployment(model_name=model_name, use_gpu=False)
    md = mapping.build_model_deployment(request, "tenant-a", "a-clinic")
    assert md["spec"]["model"] == source
    # The operator's own parser takes it as it stands.
    assert parse_model_deployment(md).spec.model.model_dump(exclude_none=True, by_alias=True) == {
        **source,
        "revision": "main",
    }
    assert mapping.to_deployment(md).model_name == model_name
    assert md["metadata"]["name"].startswith(model_name.rstrip("/").rsplit("/", 1)[-1].lower())


@pytest.mark.parametrize(
    ("model_name", "message"),
    [
        ("pvc://Upper/x", "model_name must look like pvc://<claim-name>/<path>"),
        ("pvc://", "model_name must look like pvc://<claim-name>/<path>"),
        ("s3://a", "model_name must look like s3://<bucket>/<prefix>"),
        ("https://huggingface.co/org/m", "model_name URIs must start with pvc:// or s3://"),
        ("file:///models/x", "model_name URIs must start with pvc:// or s3://"),
        ("pvc://c/" + "x" * 1020, "at most 1024 characters"),
        ("pvc://tiny-model/../../etc", "no '.' or '..' segment and no empty one"),
        ("pvc://tiny-model//etc", "no '.' or '..' segment and no empty one"),
        ("s3://bucket/a/../../b", "no '.' or '..' segment and no empty one"),
        ("org/" + "m" * 200, "a Hugging Face repo id like org/name"),
        ("../x", "a Hugging Face repo id like org/name"),
    ],
)
def test_a_malformed_model_name_is_refused_saying_which_form_was_meant(
    model_name: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        CreateDeployment(model_name=model_name)
    (error,) = refused.value.errors()
    assert error["loc"] == ("model_name",)
    assert message in error["msg"]


def test_the_openapi_shapes_of_model_name_admit_exactly_what_the_api_accepts() -> None:
    shapes = CreateDeployment.model_json_schema()["properties"]["model_name"]["anyOf"]

    def documented(value: str) -> bool:
        return any(
            re.search(shape["pattern"], value) and len(value) <= shape["maxLength"]
            for shape in shapes
        )

    for value in ("org/m", "m", "pvc://c/p", "s3://bucket/p", "org/" + "m" * 200, "https://x/y"):
        try:
            CreateDeployment(model_name=value)
            accepted = True
        except ValidationError:
            accepted = False
        assert documented(value) == accepted, value


def test_cpu_and_memory_size_the_model_container_and_are_quantities() -> None:
    request = CreateDeployment(model_name="pvc://m/x", use_gpu=False, cpu="1", memory="6Gi")
    md = mapping.build_model_deployment(request, "tenant-a", "a-clinic")
    assert md["spec"]["resources"] == {"cpu": "1", "memory": "6Gi"}
    assert parse_model_deployment(md).spec.resources.memory == "6Gi"
    only_memory = CreateDeployment(model_name="m", memory="8Gi")
    assert mapping.build_model_deployment(only_memory, "t", "c")["spec"]["resources"] == {
        "memory": "8Gi"
    }
    assert (
        "resources"
        not in mapping.build_model_deployment(CreateDeployment(model_name="m"), "t", "c")["spec"]
    )
    for bad in ({"cpu": "one"}, {"memory": "6 GiB"}, {"cpu": 1}):
        with pytest.raises(ValidationError):
            CreateDeployment.model_validate({"model_name": "m", **bad})


def test_default_names_are_valid_kubernetes_names_and_unique() -> None:
    names = {mapping.default_name("ZimaBlueAI/HuatuoGPT-o1-8B") for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("huatuogpt-o1-8b-") and len(n) <= 63 for n in names)
    assert mapping.default_name("org/123-model").startswith("model-")


@pytest.mark.parametrize(
    "body",
    [
        {"model_name": "m", "use_gpu": False, "gpu_count": 1},
        {"model_name": "m", "use_gpu": 0},
        {"model_name": "m", "replicas": "1"},
        {"model_name": "m", "extra": True},
        {"model_name": "../x"},
    ],
)
def test_invalid_create_requests_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CreateDeployment.model_validate(body)


def test_integral_floats_count_as_integers_as_json_schema_says() -> None:
    assert CreateDeployment.model_validate({"model_name": "m", "replicas": 2.0}).replicas == 2
    with pytest.raises(ValidationError):
        CreateDeployment.model_validate({"model_name": "m", "replicas": 2.5})


def test_generate_bounds() -> None:
    Generate(deployment_id="d", prompt="p", max_tokens=32768, temperature=2.0)
    for bad in ({"max_tokens": 0}, {"max_tokens": 32769}, {"temperature": 2.01}, {"prompt": ""}):
        with pytest.raises(ValidationError):
            Generate.model_validate({"deployment_id": "d", "prompt": "p", **bad})
    with pytest.raises(ValidationError, match="1 MiB"):
        Generate(deployment_id="d", prompt="x" * (1024 * 1024 + 1))


def test_update_patch_only_touches_what_was_given() -> None:
    assert mapping.update_patch(UpdateDeployment(replicas=3)) == {"spec": {"replicas": 3}}


def test_a_status_maps_to_lowercase_phases() -> None:
    md = {
        "metadata": {"name": "m"},
        "spec": {"useGpu": False},
        "status": {"phase": "Ready", "readyReplicas": 1},
    }
    dep = mapping.to_deployment(md)
    assert (dep.status, dep.gpu_count, dep.ready_replicas) == ("ready", 0, 1)
    assert mapping.to_deployment({"metadata": {"name": "m"}, "spec": {}}).status == "pending"


def test_stream_chunks_become_text_events_and_one_final_event() -> None:
    assert translate.stream_event({"choices": [{"text": "Hi", "finish_reason": None}]}) == [
        {"text": "Hi"}
    ]
    assert translate.stream_event({"choices": [{"text": "", "finish_reason": "length"}]}) == [
        {"finish_reason": "length"}
    ]
    usage = translate.stream_event(
        {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}
    )
    assert usage == [{"usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}}]
    assert translate.sse({"a": 1}) == b'data: {"a":1}\n\n'


def test_routes_from_a_template_or_a_file(tmp_path) -> None:
    assert GatewayRoute().route("m", "ns") == Route("https://m.ns.svc:8443")
    assert GatewayRoute().route("m", "ns").is_tls
    routes = tmp_path / "routes.json"
    routes.write_text(
        json.dumps(
            {
                "ns/m": {"url": "https://127.0.0.1:1234/", "serverName": "m.ns.svc"},
                "ns/plain": "http://127.0.0.1:9",
            }
        )
    )
    route = GatewayRoute(f"file:{routes}")
    assert route.route("m", "ns") == Route("https://127.0.0.1:1234", "m.ns.svc")
    assert route.route("plain", "ns") == Route("http://127.0.0.1:9")
    assert not route.route("plain", "ns").is_tls
    assert route.route("other", "ns") is None


def test_a_duplicate_waits_for_the_first_answer_and_gets_it() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        table = IdempotencyTable()
        first, owns = table.claim("acme", "POST /v1/deployments k1")
        second, owns_too = table.claim("acme", "POST /v1/deployments k1")
        other, owns_other = table.claim("beta", "POST /v1/deployments k1")
        table.complete(first, 202, b"{}", "application/json")
        await asyncio.wait_for(second.done.wait(), 1)
        assert owns_other and other is not first
        return owns, owns_too, second.status

    assert asyncio.run(scenario()) == (True, False, 202)


def test_an_abandoned_first_attempt_lets_the_retry_run() -> None:
    table = IdempotencyTable()
    entry, _ = table.claim("acme", "k")
    table.abandon("acme", "k", entry)
    assert entry.status == -1 and table.claim("acme", "k")[1] is True


def test_entries_expire() -> None:
    table = IdempotencyTable(ttl=-1)
    table.claim("acme", "k")
    assert table.claim("acme", "k")[1] is True


def test_the_openapi_document_in_docs_is_current() -> None:
    assert DOC_PATH.read_text() == render(), "run: python -m paitient_api.openapi"


def test_an_autoscaled_create_request_becomes_spec_autoscaling_without_replicas() -> None:
    request = CreateDeployment.model_validate(
        {"model_name": "pvc://m/x", "use_gpu": False,
         "autoscaling": {"min_replicas": 0, "max_replicas": 3, "target_metric": "waiting",
                         "target_value": 4, "scale_down_delay": "90s"}}
    )  # fmt: skip
    md = mapping.build_model_deployment(request, "tenant-a", "a-clinic")
    assert "replicas" not in md["spec"]
    assert md["spec"]["autoscaling"] == {
        "minReplicas": 0, "maxReplicas": 3, "target": {"metric": "waiting", "value": 4.0},
        "scaleDownDelay": "90s",
    }  # fmt: skip
    parsed = parse_model_deployment(md)  # the operator takes it as it stands
    assert parsed.spec.autoscaling is not None and parsed.spec.autoscaling.max_replicas == 3
    md["status"] = {"desiredReplicas": 2}
    assert mapping.to_deployment(md).replicas == 2  # what the autoscaler asks for now


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"replicas": 2, "autoscaling": {"max_replicas": 3}}, "replicas and autoscaling"),
        ({"autoscaling": {"min_replicas": 3, "max_replicas": 2}}, "min_replicas"),
        ({"autoscaling": {"max_replicas": 2, "target_value": 0}}, "autoscaling.target_value"),
        ({"autoscaling": {"max_replicas": 0}}, "autoscaling.max_replicas"),
        ({"autoscaling": {"min_replicas": 1}}, "autoscaling.max_replicas"),
        ({"autoscaling": {"max_replicas": 2, "scale_down_delay": "5 minutes"}},
         "autoscaling.scale_down_delay"),
    ],
)  # fmt: skip
def test_bad_autoscaling_is_a_422_naming_the_field(body: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CreateDeployment.model_validate({"model_name": "a/b", **body})
    error = RequestValidationError.from_pydantic(refused.value.errors())  # the handler's 422
    assert error.status == 422 and named in error.message, error.message
