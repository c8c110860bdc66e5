"""wait_until_ready: returns when ready, raises the failure, gives up at the deadline."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paitient_secure_model import (
    DeploymentStatus,
    ResourceError,
    SecureModelClient,
    WaitTimeoutError,
)

from .conftest import make_client
from .fakeserver import FakeServer


class Clock:
    """A fake monotonic clock that the client's sleep advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def progressing(server: FakeServer, statuses: list[tuple[str, str]]) -> Any:
    """Each status poll moves the deployment to the next (status, message)."""
    pending = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            status, message = next(pending, statuses[-1])
            server.deployments["my-model"].update(status=status, message=message)
        return server.handle(request)

    return handler


def client_with_clock(handler: Any) -> tuple[SecureModelClient, Clock]:
    clock = Clock()
    client = make_client(handler)
    client._clock = clock
    client._sleep = clock.sleep
    return client, clock


def test_returns_the_ready_status(server: FakeServer) -> None:
    server.add_deployment("my-model")
    steps = [("pending", ""), ("progressing", "pulling"), ("degraded", "1/2"), ("ready", "")]
    client, clock = client_with_clock(progressing(server, steps))
    seen: list[DeploymentStatus] = []
    status = client.wait_until_ready(
        "my-model", timeout=60, poll_interval=5, on_progress=seen.append
    )
    assert status.is_ready
    assert [s.status for s in seen] == ["pending", "progressing", "degraded", "ready"]
    assert clock.sleeps == [5, 5, 5]


def test_raises_the_deployments_failure(server: FakeServer) -> None:
    server.add_deployment("my-model")
    steps = [("pending", ""), ("failed", "model ZimaBlueAI/nope not found on the hub")]
    client, _ = client_with_clock(progressing(server, steps))
    with pytest.raises(ResourceError) as info:
        client.wait_until_ready("my-model")
    assert str(info.value) == "model ZimaBlueAI/nope not found on the hub"
    assert info.value.type == "deployment_failed"


def test_gives_up_at_the_deadline(server: FakeServer) -> None:
    server.add_deployment("my-model")
    client, clock = client_with_clock(progressing(server, [("progressing", "still pulling")]))
    with pytest.raises(WaitTimeoutError) as info:
        client.wait_until_ready("my-model", timeout=7, poll_interval=3)
    # Polls at 0, 3, 6 and, with the last sleep cut short, at the 7 s deadline.
    assert clock.sleeps == [3, 3, 1]
    assert clock.now == 7
    assert info.value.deployment_id == "my-model"
    assert info.value.last_status is not None
    assert info.value.last_status.message == "still pulling"
    assert "not ready after 7s" in str(info.value)
    assert isinstance(info.value, TimeoutError)


def test_missing_deployment_raises_not_found(client: SecureModelClient) -> None:
    with pytest.raises(ResourceError):
        client.wait_until_ready("ghost")


@pytest.mark.parametrize(("timeout", "interval"), [(-1, 2), (10, 0)])
def test_invalid_arguments(client: SecureModelClient, timeout: float, interval: float) -> None:
    with pytest.raises(ValueError):
        client.wait_until_ready("deployment-123", timeout=timeout, poll_interval=interval)
