"""The /v1 API on the real local cluster: deployments, subscription, and who may see what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for


@pytest.fixture(scope="module")
def api(
    operator: OperatorProcess, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    proc = ApiProcess(kubeconfig, tmp_path_factory.mktemp("api") / "api.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def acme(kube: Kube, operator: OperatorProcess) -> Iterator[dict[str, str]]:
    tenant = make_tenant(kube)
    yield tenant
    admin.delete_tenant(kube, tenant["name"], force=True)


@pytest.fixture(scope="module")
def beta(kube: Kube, operator: OperatorProcess) -> Iterator[dict[str, str]]:
    tenant = make_tenant(kube)
    yield tenant
    admin.delete_tenant(kube, tenant["name"], force=True)


MD = ("paitient.ai/v1alpha1", "ModelDeployment")


def auth(tenant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}


def _get(api: ApiProcess, tenant: dict[str, str], path: str) -> Any:
    status, _, body = call("GET", f"{api.base_url}{path}", headers=auth(tenant))
    assert status == 200, body
    return body


def assert_authorised(api: ApiProcess, tenant: dict[str, str]) -> None:
    """A new key works on its first request (the front door reads it through if need be)."""
    status, _, body = call("GET", f"{api.base_url}/subscription", headers=auth(tenant))
    assert status == 200, body


def test_deployments_lifecycle_through_the_api(
    api: ApiProcess, acme: dict[str, str], kube: Kube
) -> None:
    assert_authorised(api, acme)
    base, name = api.base_url, "my-secure-model"
    # A GPU deployment: placed on the simulated H100 nodes, where the data plane serves it. (A CPU
    # one would run real vLLM on the real node, which cannot fetch this Hugging Face model here;
    # tests/integration/test_model_pods_on_the_real_node.py serves one from a PVC.)
    status, headers, body = call(
        "POST", f"{base}/deployments",
        {"model_name": "ZimaBlueAI/HuatuoGPT-o1-8B", "deployment_name": name, "use_gpu": True},
        auth(acme),
    )  # fmt: skip
    assert status == 202, body
    assert headers.get("x-request-id", "").startswith("req_")
    assert body["id"] == name and body["model_name"] == "ZimaBlueAI/HuatuoGPT-o1-8B"
    assert body["status"] == "pending" and body["use_gpu"] is True
    md = kube.get(*MD, name, namespace=acme["namespace"])
    assert md is not None and md["spec"]["useGpu"] is True

    # The operator provisions it (on its default encrypted StorageClass) and it turns ready.
    ready = wait_for(
        lambda: (s := _get(api, acme, f"/deployments/{name}/status"))["status"] == "ready" and s,
        timeout=90, what="the deployment to turn ready",
    )  # fmt: skip
    assert ready["id"] == name and ready["ready_replicas"] == 1
    assert {(c["type"], c["status"]) for c in ready["conditions"]} >= {("Ready", "True")}
    shown = _get(api, acme, f"/deployments/{name}")
    assert shown["status"] == "ready" and shown["endpoint"].startswith(f"https://{name}.")
    listed = _get(api, acme, "/deployments")
    assert [d["id"] for d in listed["data"]] == [name]

    patched = call("PATCH", f"{base}/deployments/{name}", {"replicas": 2}, auth(acme))
    assert patched[0] == 200 and patched[2]["replicas"] == 2
    wait_for(
        lambda: (s := _get(api, acme, f"/deployments/{name}"))["ready_replicas"] == 2
        and s["status"] == "ready",
        timeout=90, what="the second replica ready",
    )  # fmt: skip

    deleted = call("DELETE", f"{base}/deployments/{name}", headers=auth(acme))
    assert deleted[0] == 202 and deleted[2] == {"id": name, "deleted": True}
    wait_for(lambda: call("GET", f"{base}/deployments/{name}", headers=auth(acme))[0] == 404)
    wait_for(lambda: kube.get(*MD, name, namespace=acme["namespace"]) is None)


def test_a_tenant_never_sees_another_tenants_deployment(
    api: ApiProcess, acme: dict[str, str], beta: dict[str, str], kube: Kube
) -> None:
    assert_authorised(api, acme)
    assert_authorised(api, beta)
    created = call(
        "POST",
        f"{api.base_url}/deployments",
        {"model_name": "org/model", "deployment_name": "private", "use_gpu": False},
        auth(acme),
    )
    assert created[0] == 202
    for method, path in (
        ("GET", "/deployments/private"),
        ("GET", "/deployments/private/status"),
        ("DELETE", "/deployments/private"),
        ("PATCH", "/deployments/private"),
    ):
        status, _, body = call(
            method,
            f"{api.base_url}{path}",
            {"replicas": 0} if method == "PATCH" else None,
            auth(beta),
        )
        missing = call(
            method,
            f"{api.base_url}{path.replace('private', 'nothing-here')}",
            {"replicas": 0} if method == "PATCH" else None,
            auth(beta),
        )
        assert status == 404 and body["error"]["type"] == "not_found_error"
        assert (missing[0], missing[2]["error"]["message"]) == (status, body["error"]["message"])
    assert call("GET", f"{api.base_url}/deployments", headers=auth(beta))[2] == {"data": []}
    # The other tenant's DELETE and PATCH changed nothing: the owner still has it as it was.
    mine = _get(api, acme, "/deployments/private")
    assert (mine["id"], mine["replicas"]) == ("private", 1)
    md = kube.get(*MD, "private", namespace=acme["namespace"])
    assert md is not None and md["spec"]["replicas"] == 1
    assert "deletionTimestamp" not in md["metadata"]


def test_the_tiers_quota_refuses_a_deployment_past_its_count(
    api: ApiProcess, kube: Kube, operator: OperatorProcess
) -> None:
    """The free tier allows one deployment: the API server's ResourceQuota refuses the second
    at creation, and the caller learns why."""
    tenant = make_tenant(kube, tier="free")
    try:
        assert_authorised(api, tenant)
        body = {"model_name": "org/model", "use_gpu": False}
        first = call(
            "POST", f"{api.base_url}/deployments", {**body, "deployment_name": "one"}, auth(tenant)
        )
        assert first[0] == 202, first
        status, _, refused = call(
            "POST", f"{api.base_url}/deployments", {**body, "deployment_name": "two"}, auth(tenant)
        )
        assert status == 403, refused
        assert refused["error"] == {
            "type": "permission_error",
            "message": "your subscription tier allows no more deployments of this size",
            "request_id": refused["error"]["request_id"],
        }
        assert kube.get(*MD, "two", namespace=tenant["namespace"]) is None
        quota = kube.get("v1", "ResourceQuota", "paitient-tier", namespace=tenant["namespace"])
        assert quota is not None
        assert quota["spec"]["hard"]["count/modeldeployments.paitient.ai"] == "1"
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)


def test_subscription_reports_tier_and_usage(api: ApiProcess, acme: dict[str, str]) -> None:
    assert_authorised(api, acme)
    status, _, body = call("GET", f"{api.base_url}/subscription", headers=auth(acme))
    assert status == 200
    assert body["tier"] == "standard" and body["usage_limit"] == 10_000_000
    assert body["current_usage"] == 0 and body["period_start"] and body["period_end"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"Authorization": "Bearer ", "X-Client-ID": "x"}, 401),
        ({"Authorization": "Bearer psk_aaaaaaaaaaaa_" + "A" * 43, "X-Client-ID": "x"}, 401),
        ({"Authorization": "Bearer " + "x" * 5000, "X-Client-ID": "x"}, 401),
    ],
)
def test_bad_credentials_are_401_with_one_message(
    api: ApiProcess, headers: dict[str, str], expected: int
) -> None:
    status, hdrs, body = call("GET", f"{api.base_url}/deployments", headers=headers)
    assert status == expected
    assert body["error"] == {
        "type": "authentication_error",
        "message": "invalid API key or client ID",
        "request_id": hdrs["x-request-id"],
    }


def test_a_key_with_another_tenants_client_id_is_401(
    api: ApiProcess, acme: dict[str, str], beta: dict[str, str]
) -> None:
    assert_authorised(api, acme)
    status, _, body = call(
        "GET",
        f"{api.base_url}/deployments",
        headers={"Authorization": f"Bearer {acme['key']}", "X-Client-ID": beta["client_id"]},
    )
    assert status == 401 and body["error"]["message"] == "invalid API key or client ID"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "model_name"),
        ({"model_name": "../../etc/passwd"}, "model_name"),
        ({"model_name": "org/m", "deployment_name": "Bad_Name"}, "deployment_name"),
        ({"model_name": "org/m", "use_gpu": False, "gpu_count": 2}, "gpu_count"),
        ({"model_name": "org/m", "replicas": -1}, "replicas"),
        ({"model_name": "org/m", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(
    api: ApiProcess, acme: dict[str, str], body: dict[str, Any], field: str
) -> None:
    assert_authorised(api, acme)
    status, _, answer = call("POST", f"{api.base_url}/deployments", body, auth(acme))
    assert status == 422
    assert answer["error"]["type"] == "validation_error" and field in answer["error"]["message"]


def test_unreadable_bodies_are_400(api: ApiProcess, acme: dict[str, str]) -> None:
    assert_authorised(api, acme)
    status, _, body = call(
        "POST", f"{api.base_url}/deployments", headers=auth(acme), raw=b"\xff\xfe not json"
    )
    assert status == 400 and body["error"]["type"] == "validation_error"


def test_headers_beyond_the_http_limit_are_refused_without_a_server_error(api: ApiProcess) -> None:
    status, _, _ = call(
        "GET",
        f"{api.base_url}/deployments",
        headers={"Authorization": "Bearer " + "x" * 20000, "X-Client-ID": "x"},
    )
    assert 400 <= status < 500


def test_openapi_document_is_served_and_matches_docs(api: ApiProcess) -> None:
    status, _, body = call("GET", f"{api.base_url}/openapi.json")
    assert status == 200
    assert body == json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text()
    )


def test_a_retried_create_with_the_same_idempotency_key_creates_one_deployment(
    api: ApiProcess, beta: dict[str, str]
) -> None:
    assert_authorised(api, beta)
    headers = {**auth(beta), "Idempotency-Key": "retry-1"}
    body = {"model_name": "org/retried-model", "use_gpu": False}
    first = call("POST", f"{api.base_url}/deployments", body, headers)
    second = call("POST", f"{api.base_url}/deployments", body, headers)
    assert first[0] == second[0] == 202
    assert first[2]["id"] == second[2]["id"]
    ids = [
        d["id"] for d in call("GET", f"{api.base_url}/deployments", headers=auth(beta))[2]["data"]
    ]
    assert ids.count(first[2]["id"]) == 1
    third = call(
        "POST", f"{api.base_url}/deployments", body, {**auth(beta), "Idempotency-Key": "retry-2"}
    )
    assert third[0] == 202 and third[2]["id"] != first[2]["id"]


def test_a_suspended_tenant_gets_403_and_its_data_stays(
    api: ApiProcess, beta: dict[str, str], kube: Kube
) -> None:
    assert_authorised(api, beta)
    admin.set_suspended(kube, beta["name"], True)
    try:
        _, _, body = wait_for(
            lambda: (
                (r := call("GET", f"{api.base_url}/deployments", headers=auth(beta)))[0] == 403
                and r
            ),
            what="403 for the suspended tenant",
        )
        assert body["error"]["type"] == "permission_error"
        assert kube.get("v1", "Namespace", beta["namespace"]) is not None
    finally:
        admin.set_suspended(kube, beta["name"], False)
    # How soon is test_key_propagation.py's to measure; here: it happens.
    wait_for(
        lambda: call("GET", f"{api.base_url}/subscription", headers=auth(beta))[0] == 200,
        what="the resumed tenant let back in",
    )
