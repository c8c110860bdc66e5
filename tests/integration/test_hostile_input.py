"""Hostile input against the running front door: property-based fuzzing of the OpenAPI
document (no 5xx, no response outside the schema) and a table of attacks, each answered with the
right error and nothing leaked."""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from paitient_common.kubeapi import KubeError
from tests.integration.frontdoor_process import CA_BUNDLE_ENV, ApiProcess, call, client_trust
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for
from tests.unit.operator.factories import make_md

REPO = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_path(str(REPO / "docs" / "openapi.json"))


def _auth(tenant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}


READY = "fuzz-ready"  # the fuzz tenant's deployment that serves, so successes are checked too
# (method, path) -> status codes the fuzzer got, across every case: read by the last test.
ANSWERED: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)


@pytest.fixture(scope="module")
def fuzz_tenant(stack: ApiProcess, kube: Any) -> Iterator[dict[str, str]]:
    """A tenant of its own with one Ready deployment: the fuzzer fills its quota with
    deployments, which must not starve the other tests' tenant, and its reads and generates
    meet a deployment that answers, so success bodies are checked against the schema too."""
    from paitient_cli import admin  # noqa: PLC0415

    tenant = make_tenant(kube)
    wait_for(lambda: call("GET", f"{stack.base_url}/subscription", headers=_auth(tenant))[0] == 200)
    kube.create(
        make_md(READY)
        .namespace(tenant["namespace"])
        .gpus(1)
        .storage("5Gi", "encrypted-local")
        .manifest()
    )
    client = sdk.SecureModelClient(
        api_key=tenant["key"], client_id=tenant["client_id"], base_url=stack.base_url
    )
    client.wait_until_ready(READY, timeout=120, poll_interval=0.5)
    client.close()
    yield tenant
    admin.delete_tenant(kube, tenant["name"], force=True)


def _aimed_at_the_ready_deployment(case: schemathesis.Case) -> None:
    """Reads and generates name the deployment that serves (a random id only finds 404); a
    DELETE or PATCH keeps its random id, so the fuzzer never removes or rescales it. Only a
    valid case is aimed: a negative one may have its flaw in the very field aimed (an id of the
    wrong type), and the OpenAI routes leave the rest of a body to the model server, so it
    keeps its random target and must be refused there (404)."""
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    scaling = case.body.get("autoscaling") if isinstance(case.body, dict) else None
    if isinstance(scaling, dict) and all(
        isinstance(scaling.get(k), int | float) for k in ("min_replicas", "max_replicas")
    ):
        # minReplicas <= maxReplicas compares two fields, which JSON Schema cannot say (the
        # field's description does; the server's 422 is tested in test_autoscaling).
        low, high = sorted((scaling["min_replicas"], scaling["max_replicas"]))
        scaling["min_replicas"], scaling["max_replicas"] = low, high
    if isinstance(case.body, dict):  # within the tiny model's context, as a real client asks
        for field in ("max_tokens", "max_completion_tokens"):
            value = case.body.get(field)
            # JSON Schema's integers include 3069.0, which the generator makes too.
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 16:
                case.body[field] = 16
    if case.method == "GET" and case.path_parameters and "id" in case.path_parameters:
        case.path_parameters["id"] = READY
    if case.method == "POST" and isinstance(case.body, dict):
        if case.path == "/generate" and "deployment_id" in case.body:
            case.body["deployment_id"] = READY
        if case.path in ("/chat/completions", "/completions") and "model" in case.body:
            case.body["model"] = READY


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_5xx_and_only_documented_answers(
    case: schemathesis.Case, stack: ApiProcess, fuzz_tenant: dict[str, str]
) -> None:
    _aimed_at_the_ready_deployment(case)
    # The front door serves TLS: requests trusts the session's CA bundle, as the SDKs do; the
    # checks' own probes (e.g. the same request without credentials) are sent the same way.
    bundle = os.environ[CA_BUNDLE_ENV]
    response = case.call(base_url=stack.base_url, headers=_auth(fuzz_tenant), verify=bundle)
    ANSWERED[case.method, case.path][response.status_code] += 1
    # 503 is documented for "not ready": any other 5xx is a bug.
    assert response.status_code < 500 or response.status_code == 503, response.text
    # The OpenAI routes forward a body as sent (docs/openai.md): past `model`, what a valid
    # schema still allows (e.g. a tool message without its call) is the model server's to
    # refuse, with its 400; the schema's own rules are still checked on every answer.
    excluded = [schemathesis.checks.not_a_server_error]
    if case.path in ("/chat/completions", "/completions"):
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.validate_response(
        response,
        excluded_checks=excluded,
        transport_kwargs={"base_url": stack.base_url, "verify": bundle},
    )


def test_the_fuzzer_met_successes_where_the_deployment_serves() -> None:
    """Success bodies were among what the fuzzer had validated: its reads of the ready
    deployment and at least some of its generates were answered 200."""
    assert ANSWERED, "the fuzzing tests did not run first"
    assert ANSWERED["GET", "/deployments/{id}"][200] > 0, dict(ANSWERED)
    assert ANSWERED["GET", "/subscription"][200] > 0, dict(ANSWERED)
    assert ANSWERED["POST", "/generate"][200] > 0, dict(ANSWERED)


def test_the_api_server_refuses_a_model_uri_that_leaves_its_claim(
    kube: Any, namespace: str
) -> None:
    """The CRD's own rule, for a ModelDeployment written without the front door."""
    for uri in ("pvc://tiny-model/../../etc", "pvc://tiny-model//etc", "s3://bucket/../other"):
        manifest = make_md("escape").namespace(namespace).cpu_only().manifest()
        manifest["spec"]["model"] = {"uri": uri}
        with pytest.raises(KubeError, match=re.escape("no '.' or '..' segment")) as refused:
            kube.create(manifest)
        assert refused.value.status == 422, uri


SECRET_MARKER = "PATIENT-MRN-9913-SECRET"


def _attacks(
    acme: dict[str, str], beta: dict[str, str]
) -> list[tuple[str, str, str, dict[str, str], Any, int, str]]:
    """(name, method, path, headers, body, status, error type)."""
    good = _auth(acme)
    gen = {"deployment_id": "deployment-123", "prompt": "hello", "max_tokens": 5}
    return [
        ("missing auth", "GET", "/deployments", {}, None, 401, "authentication_error"),
        (
            "empty bearer",
            "GET",
            "/deployments",
            {"Authorization": "Bearer", "X-Client-ID": acme["client_id"]},
            None,
            401,
            "authentication_error",
        ),
        (
            "empty client id",
            "GET",
            "/deployments",
            {**good, "X-Client-ID": ""},
            None,
            401,
            "authentication_error",
        ),
        (
            "basic scheme",
            "GET",
            "/deployments",
            {"Authorization": f"Basic {acme['key']}", "X-Client-ID": acme["client_id"]},
            None,
            401,
            "authentication_error",
        ),
        (
            "oversized key",
            "GET",
            "/deployments",
            {**good, "Authorization": "Bearer " + "k" * 6000},
            None,
            401,
            "authentication_error",
        ),
        (
            "A's key, B's client id",
            "GET",
            "/deployments",
            {**good, "X-Client-ID": beta["client_id"]},
            None,
            401,
            "authentication_error",
        ),
        (
            "B reads A's deployment",
            "GET",
            "/deployments/deployment-123",
            _auth(beta),
            None,
            404,
            "not_found_error",
        ),
        (
            "B generates on A's deployment",
            "POST",
            "/generate",
            _auth(beta),
            gen,
            404,
            "not_found_error",
        ),
        (
            "path traversal",
            "GET",
            "/deployments/..%2F..%2Fkube-system",
            good,
            None,
            404,
            "not_found_error",
        ),
        ("k8s-invalid id", "GET", "/deployments/UPPER_case.id", good, None, 404, "not_found_error"),
        ("overlong id", "GET", "/deployments/" + "a" * 300, good, None, 404, "not_found_error"),
        (
            "negative max_tokens",
            "POST",
            "/generate",
            good,
            {**gen, "max_tokens": -1},
            422,
            "validation_error",
        ),
        (
            "huge max_tokens",
            "POST",
            "/generate",
            good,
            {**gen, "max_tokens": 10**12},
            422,
            "validation_error",
        ),
        (
            "temperature too high",
            "POST",
            "/generate",
            good,
            {**gen, "temperature": 2.5},
            422,
            "validation_error",
        ),
        (
            "temperature negative",
            "POST",
            "/generate",
            good,
            {**gen, "temperature": -0.1},
            422,
            "validation_error",
        ),
        (
            "oversized prompt",
            "POST",
            "/generate",
            good,
            {**gen, "prompt": SECRET_MARKER + "x" * (1024 * 1024 + 1)},
            422,
            "validation_error",
        ),
        (
            "body over the 2 MiB limit",
            "POST",
            "/generate",
            good,
            {**gen, "prompt": SECRET_MARKER + "x" * (3 * 1024 * 1024)},
            413,
            "validation_error",
        ),
        (
            "model URI of another scheme",
            "POST",
            "/deployments",
            good,
            {"model_name": "file:///etc/passwd", "use_gpu": False},
            422,
            "validation_error",
        ),
        (
            "malformed pvc:// model URI",
            "POST",
            "/deployments",
            good,
            {"model_name": "pvc://Not_A_Claim/x", "use_gpu": False},
            422,
            "validation_error",
        ),
        (
            "model URI leaving its claim",
            "POST",
            "/deployments",
            good,
            {"model_name": "pvc://tiny-model/../../etc", "use_gpu": False},
            422,
            "validation_error",
        ),
        (
            "model URI with an empty segment",
            "POST",
            "/deployments",
            good,
            {"model_name": "pvc://tiny-model//etc", "use_gpu": False},
            422,
            "validation_error",
        ),
        (
            "n of 10000 on one shared model",
            "POST",
            "/completions",
            good,
            {"model": "deployment-123", "prompt": SECRET_MARKER, "n": 10000, "max_tokens": 1},
            422,
            "validation_error",
        ),
        (
            "best_of above the deployment's cap",
            "POST",
            "/completions",
            good,
            {"model": "deployment-123", "prompt": "hi", "best_of": 17, "max_tokens": 1},
            422,
            "validation_error",
        ),
        (
            "prompt of the wrong type",
            "POST",
            "/generate",
            good,
            {**gen, "prompt": {"text": SECRET_MARKER}},
            422,
            "validation_error",
        ),
    ]


@pytest.fixture
def beta_tenant(stack: ApiProcess, kube: Any) -> Iterator[dict[str, str]]:
    """A second tenant for the cross-tenant attacks, deleted afterwards. Its key works on its
    first request (the front door reads a key it has not seen through), so an attack's 404 is
    never a 401 in disguise."""
    from paitient_cli import admin  # noqa: PLC0415

    tenant = make_tenant(kube)
    status, _, body = call("GET", f"{stack.base_url}/subscription", headers=_auth(tenant))
    assert status == 200, body
    yield tenant
    admin.delete_tenant(kube, tenant["name"], force=True)


def test_attack_table(
    stack: ApiProcess, stack_tenant: dict[str, str], beta_tenant: dict[str, str]
) -> None:
    beta = beta_tenant
    failures = []
    for name, method, path, headers, body, status, error_type in _attacks(stack_tenant, beta):
        got, hdrs, answer = call(method, f"{stack.base_url}{path}", body, headers)
        text = json.dumps(answer)
        ok = (
            got == status
            and isinstance(answer, dict)
            and answer.get("error", {}).get("type") == error_type
            and answer["error"].get("request_id") == hdrs.get("x-request-id")
            and SECRET_MARKER not in text
            and stack_tenant["key"] not in text
        )
        if not ok:
            failures.append(f"{name}: {got} {text[:200]}")
    assert failures == []


def test_invalid_utf8_prompts_are_refused_cleanly(
    stack: ApiProcess, stack_tenant: dict[str, str]
) -> None:
    raw = b'{"deployment_id": "deployment-123", "prompt": "\xff\xfe\xfd", "max_tokens": 5}'
    status, _, body = call(
        "POST", f"{stack.base_url}/generate", headers=_auth(stack_tenant), raw=raw
    )
    assert status == 400 and body["error"]["type"] == "validation_error"


def test_duplicated_auth_headers_are_refused(
    stack: ApiProcess, stack_tenant: dict[str, str]
) -> None:
    import http.client  # noqa: PLC0415 - urllib cannot send a header twice

    host, port = stack.base_url.removeprefix("https://").split("/")[0].split(":")
    conn = http.client.HTTPSConnection(host, int(port), timeout=10, context=client_trust())
    try:
        conn.putrequest("GET", "/v1/deployments")
        conn.putheader("Authorization", f"Bearer {stack_tenant['key']}")
        conn.putheader("Authorization", "Bearer psk_aaaaaaaaaaaa_" + "A" * 43)
        conn.putheader("X-Client-ID", stack_tenant["client_id"])
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 401
        assert json.loads(response.read())["error"]["type"] == "authentication_error"
    finally:
        conn.close()


pytestmark = pytest.mark.integration


def test_an_unparseable_header_never_puts_the_key_in_a_log(
    stack: ApiProcess, stack_tenant: dict[str, str]
) -> None:
    status, _, _ = call(
        "GET", f"{stack.base_url}/deployments",
        headers={"Authorization": f"Bearer {stack_tenant['key']}" + "x" * 20000, "X-Client-ID": stack_tenant["client_id"]},
    )  # fmt: skip
    assert 400 <= status < 500
    assert stack_tenant["key"] not in stack.log.read_text(errors="replace")
