"""Every method: the request it sends (method, path, body, headers) and the typed result."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import httpx
import pytest

from paitient_secure_model import (
    Condition,
    DeletedDeployment,
    Deployment,
    DeploymentStatus,
    GenerationResult,
    NotFoundError,
    SecureModelClient,
    Subscription,
    Usage,
    __version__,
)

from .conftest import make_client
from .fakeserver import API_KEY, CLIENT_ID, FakeServer


def last(server: FakeServer) -> tuple[httpx.Request, object]:
    request = server.requests[-1]
    return request, (json.loads(request.content) if request.content else None)


def test_headers_on_every_request(client: SecureModelClient, server: FakeServer) -> None:
    client.get_subscription()
    request, _ = last(server)
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["x-client-id"] == CLIENT_ID
    assert request.headers["user-agent"] == f"paitient-secure-model-python/{__version__}"
    assert request.headers["accept"] == "application/json"
    assert "idempotency-key" not in request.headers  # GETs are idempotent by nature


def test_deploy_model_minimal(client: SecureModelClient, server: FakeServer) -> None:
    deployment = client.deploy_model("ZimaBlueAI/HuatuoGPT-o1-8B")
    request, body = last(server)
    assert (request.method, request.url.path) == ("POST", "/v1/deployments")
    # Only what was given: the server owns the defaults for the rest.
    assert body == {"model_name": "ZimaBlueAI/HuatuoGPT-o1-8B", "use_gpu": True}
    assert request.headers["content-type"] == "application/json"
    uuid.UUID(request.headers["idempotency-key"])
    assert isinstance(deployment, Deployment)
    assert deployment.status == "pending"
    assert deployment.model_name == "ZimaBlueAI/HuatuoGPT-o1-8B"


def test_deploy_model_full(client: SecureModelClient, server: FakeServer) -> None:
    deployment = client.deploy_model(
        model_name="ZimaBlueAI/HuatuoGPT-o1-8B",
        deployment_name="my-secure-model",
        use_gpu=True,
        gpu_count=2,
        replicas=3,
        max_model_len=4096,
        gpu_product="NVIDIA-A10G",
    )
    _, body = last(server)
    assert body == {
        "model_name": "ZimaBlueAI/HuatuoGPT-o1-8B",
        "deployment_name": "my-secure-model",
        "use_gpu": True,
        "gpu_count": 2,
        "replicas": 3,
        "max_model_len": 4096,
        "gpu_product": "NVIDIA-A10G",
    }
    assert deployment == Deployment(
        id="my-secure-model",
        name="my-secure-model",
        model_name="ZimaBlueAI/HuatuoGPT-o1-8B",
        status="pending",
        use_gpu=True,
        gpu_count=2,
        replicas=3,
        ready_replicas=0,
        endpoint=None,
        message="",
        created_at=datetime(2026, 11, 26, 12, tzinfo=timezone.utc),
    )


def test_list_get_status_update_delete(client: SecureModelClient, server: FakeServer) -> None:
    server.add_deployment("my-model", status="progressing", message="pulling weights")

    listed = client.list_deployments()
    assert (server.requests[-1].method, server.requests[-1].url.path) == ("GET", "/v1/deployments")
    assert [d.id for d in listed] == ["deployment-123", "my-model"]

    got = client.get_deployment("my-model")
    assert server.requests[-1].url.path == "/v1/deployments/my-model"
    assert got.status == "progressing"
    assert got.message == "pulling weights"

    status = client.get_deployment_status(deployment_id="my-model")
    assert server.requests[-1].url.path == "/v1/deployments/my-model/status"
    assert isinstance(status, DeploymentStatus)
    assert (status.id, status.status, status.replicas, status.ready_replicas) == (
        "my-model",
        "progressing",
        1,
        0,
    )
    assert status.conditions == (
        Condition(type="Ready", status="False", reason="Progressing", message="pulling weights"),
    )
    assert not status.is_ready

    updated = client.update_deployment("my-model", replicas=2, max_model_len=8192)
    request, body = last(server)
    assert (request.method, request.url.path) == ("PATCH", "/v1/deployments/my-model")
    assert body == {"replicas": 2, "max_model_len": 8192}
    assert updated.replicas == 2

    client.update_deployment("my-model", replicas=1)
    assert last(server)[1] == {"replicas": 1}

    deleted = client.delete_deployment("my-model")
    request, body = last(server)
    assert (request.method, request.url.path, body) == ("DELETE", "/v1/deployments/my-model", None)
    assert "idempotency-key" in request.headers
    assert deleted == DeletedDeployment(id="my-model", deleted=True)


def test_ids_cannot_escape_their_path_segment(
    client: SecureModelClient, server: FakeServer
) -> None:
    with pytest.raises(NotFoundError):
        client.get_deployment("../subscription")
    assert server.requests[-1].url.raw_path == b"/v1/deployments/..%2Fsubscription"


@pytest.mark.parametrize("bad", ["", None])
def test_empty_deployment_id_is_rejected_locally(client: SecureModelClient, bad: object) -> None:
    with pytest.raises(ValueError, match="deployment_id"):
        client.get_deployment(bad)  # type: ignore[arg-type]


def test_update_without_fields_is_rejected_locally(client: SecureModelClient) -> None:
    with pytest.raises(ValueError, match="at least one field"):
        client.update_deployment("deployment-123")


def test_generate(client: SecureModelClient, server: FakeServer) -> None:
    result = client.generate(
        deployment_id="deployment-123",
        prompt="Explain the importance of HIPAA compliance in healthcare AI",
        max_tokens=500,
        temperature=0.7,
    )
    request, body = last(server)
    assert (request.method, request.url.path) == ("POST", "/v1/generate")
    assert body == {
        "deployment_id": "deployment-123",
        "prompt": "Explain the importance of HIPAA compliance in healthcare AI",
        "max_tokens": 500,
        "temperature": 0.7,
        "stream": False,
    }
    assert request.headers["accept"] == "application/json"
    assert isinstance(result, GenerationResult)
    assert result.text == "HIPAA compliance protects patients."
    assert result.finish_reason == "stop"
    assert result.deployment_id == "deployment-123"
    assert result.id == "gen-1"
    assert result.usage == Usage(prompt_tokens=12, completion_tokens=4, total_tokens=16)


def test_generate_defaults(client: SecureModelClient, server: FakeServer) -> None:
    client.generate("deployment-123", "Hi")
    _, body = last(server)
    assert body == {
        "deployment_id": "deployment-123",
        "prompt": "Hi",
        "max_tokens": 256,
        "temperature": 1.0,
        "stream": False,
    }


def test_subscription(client: SecureModelClient, server: FakeServer) -> None:
    subscription = client.get_subscription()
    assert server.requests[-1].url.path == "/v1/subscription"
    assert subscription == Subscription(
        tier="standard",
        current_usage=1234,
        usage_limit=10000000,
        period_start=datetime(2026, 11, 1, tzinfo=timezone.utc),
        period_end=datetime(2026, 12, 1, tzinfo=timezone.utc),
    )


def test_unknown_fields_are_kept_in_raw() -> None:
    payload = {"id": "a", "name": "a", "model_name": "m", "status": "ready", "zone": "eu-1"}
    assert Deployment.from_json(payload).raw["zone"] == "eu-1"


def test_malformed_success_body_is_a_clear_error() -> None:
    client = make_client(lambda r: httpx.Response(200, json={"nope": 1}))
    with pytest.raises(Exception, match="no valid 'tier'"):
        client.get_subscription()
    client = make_client(lambda r: httpx.Response(200, text="<html>"))
    with pytest.raises(Exception, match="not JSON"):
        client.get_subscription()


def test_per_call_timeout_overrides_the_default(server: FakeServer) -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return server.handle(request)

    client = make_client(handler, timeout=12.0)
    client.get_subscription()
    client.generate("deployment-123", "Hi", timeout=300)
    client.get_deployment("deployment-123", timeout=httpx.Timeout(5.0, connect=1.0))
    assert seen[0]["read"] == 12.0
    assert seen[1]["read"] == 300
    assert seen[2] == {"connect": 1.0, "read": 5.0, "write": 5.0, "pool": 5.0}


def test_context_manager_closes_owned_client_only(server: FakeServer) -> None:
    http = httpx.Client(transport=server.transport())
    with SecureModelClient(api_key="k", client_id="c", http_client=http):
        pass
    assert not http.is_closed  # the caller's client stays theirs

    client = SecureModelClient(api_key="k", client_id="c")
    with client:
        pass
    assert client._http.is_closed


def test_with_the_default_timeout_a_model_gets_long_enough_to_start_from_zero(
    server: FakeServer,
) -> None:
    """The front door holds a request up to 300 s while a deployment starts from zero
    replicas: generate and chat, and only they, wait that long for the first byte by default;
    a timeout the caller chose is theirs."""
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return server.handle(request)

    client = make_client(handler)
    client.get_subscription()
    client.generate("deployment-123", "Hi")
    assert seen[0]["read"] == 60.0
    assert seen[1] == {"connect": 60.0, "read": 420.0, "write": 60.0, "pool": 60.0}
    make_client(handler, timeout=30.0).generate("deployment-123", "Hi")
    assert seen[2]["read"] == 30.0


def test_a_deployment_at_zero_replicas_counts_as_ready() -> None:
    status = DeploymentStatus.from_json({"id": "a", "status": "scaled-to-zero"})
    assert status.is_ready and not status.is_failed
