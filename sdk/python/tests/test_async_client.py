"""The async twin behaves like the sync client: same requests, results, errors and retries."""

from __future__ import annotations

import json

import httpx
import pytest

from paitient_secure_model import (
    AsyncGenerationStream,
    AsyncSecureModelClient,
    AuthenticationError,
    DeploymentStatus,
    GenerationChunk,
    RateLimitError,
    ResourceError,
    ServiceError,
)

from .conftest import Sleeps, make_async_client, run
from .fakeserver import FakeServer, service_error, sse


def test_every_method(server: FakeServer) -> None:
    async def main() -> None:
        async with make_async_client(server.handle) as client:
            deployment = await client.deploy_model(
                "ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name="my-model", replicas=2
            )
            assert json.loads(server.requests[-1].content) == {
                "model_name": "ZimaBlueAI/HuatuoGPT-o1-8B",
                "deployment_name": "my-model",
                "use_gpu": True,
                "replicas": 2,
            }
            assert "idempotency-key" in server.requests[-1].headers
            assert deployment.id == "my-model"
            assert [d.id for d in await client.list_deployments()] == ["deployment-123", "my-model"]
            assert (await client.get_deployment("my-model")).replicas == 2
            status = await client.get_deployment_status("my-model")
            assert status.status == "pending"
            assert server.requests[-1].url.path == "/v1/deployments/my-model/status"
            assert (await client.update_deployment("my-model", replicas=1)).replicas == 1
            assert server.requests[-1].method == "PATCH"
            result = await client.generate("deployment-123", "Hi", max_tokens=10, temperature=0.2)
            assert result.text == "HIPAA compliance protects patients."
            assert result.usage.total_tokens == 16
            assert (await client.get_subscription()).usage_limit == 10000000
            assert (await client.delete_deployment("my-model")).deleted
            assert server.requests[-1].method == "DELETE"
            for request in server.requests:
                assert request.headers["authorization"] == "Bearer your-api-key"
                assert request.headers["x-client-id"] == "your-client-id"
                assert request.headers["user-agent"].startswith("paitient-secure-model-python/")

    run(main())


def test_streaming(server: FakeServer) -> None:
    async def main() -> list[GenerationChunk]:
        client = make_async_client(server.handle)
        stream = await client.generate("deployment-123", "Hi", stream=True)
        assert isinstance(stream, AsyncGenerationStream)
        async with stream:
            chunks = [chunk async for chunk in stream]
        assert stream.response.is_closed
        async with await client.generate_stream("deployment-123", "Hi") as again:
            assert (await again.__anext__()).text == "HIPAA"
        await client.close()
        return chunks

    chunks = run(main())
    assert "".join(c.text for c in chunks) == "HIPAA compliance protects patients."
    assert chunks[-1].finish_reason == "stop"


def test_error_event_mid_stream() -> None:
    body = sse({"text": "a"}, {"error": {"type": "service_error", "message": "GPU fell over"}})

    async def main() -> list[str]:
        client = make_async_client(lambda r: httpx.Response(200, content=body))
        got: list[str] = []
        with pytest.raises(ServiceError, match="GPU fell over"):
            async for chunk in await client.generate_stream("d", "Hi"):
                got.append(chunk.text)
        return got

    assert run(main()) == ["a"]


def test_errors_and_retries(server: FakeServer) -> None:
    sleeps = Sleeps()
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        limited = service_error("rate_limited")  # the front door's recorded 429
        return limited if len(calls) <= 2 else server.handle(request)

    async def main() -> None:
        client = make_async_client(handler, sleeps)
        assert (await client.get_subscription()).tier == "standard"
        with pytest.raises(RateLimitError):
            await make_async_client(
                lambda r: service_error("usage_limit_reached"), max_retries=0
            ).get_subscription()
        with pytest.raises(AuthenticationError, match="invalid API key or client ID"):
            await make_async_client(FakeServer(credentials={}).handle).get_subscription()

    run(main())
    assert len(calls) == 3
    assert sleeps == [60.0, 60.0]  # its Retry-After


def test_wait_until_ready(server: FakeServer) -> None:
    server.add_deployment("my-model", status="failed", message="image pull failed")
    seen: list[DeploymentStatus] = []

    async def on_progress(status: DeploymentStatus) -> None:
        seen.append(status)

    async def main() -> None:
        client = make_async_client(server.handle)
        ready = await client.wait_until_ready("deployment-123", on_progress=on_progress)
        assert ready.is_ready
        with pytest.raises(ResourceError, match="image pull failed"):
            await client.wait_until_ready("my-model")

    run(main())
    assert [s.status for s in seen] == ["ready"]


def test_async_client_closes_what_it_owns() -> None:
    async def main() -> None:
        client = AsyncSecureModelClient(api_key="k", client_id="c")
        async with client:
            pass
        assert client._http.is_closed

    run(main())
