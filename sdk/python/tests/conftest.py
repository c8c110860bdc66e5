from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from paitient_secure_model import AsyncSecureModelClient, SecureModelClient

from .fakeserver import API_KEY, BASE_URL, CLIENT_ID, FakeServer

T = TypeVar("T")
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may see the developer's real credentials."""
    for name in ("PAITIENT_API_KEY", "PAITIENT_CLIENT_ID", "PAITIENT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


class Sleeps(list[float]):
    """Records the delays a client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


def make_client(handler: Handler, sleeps: Sleeps | None = None, **kwargs: Any) -> SecureModelClient:
    client = SecureModelClient(
        api_key=API_KEY,
        client_id=CLIENT_ID,
        base_url=BASE_URL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        **kwargs,
    )
    client._sleep = sleeps if sleeps is not None else Sleeps()
    client._random = lambda: 1.0  # the top of the jitter window: deterministic delays
    return client


def make_async_client(
    handler: Handler, sleeps: Sleeps | None = None, **kwargs: Any
) -> AsyncSecureModelClient:
    client = AsyncSecureModelClient(
        api_key=API_KEY,
        client_id=CLIENT_ID,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        **kwargs,
    )
    client._sleep = (sleeps if sleeps is not None else Sleeps()).asleep
    client._random = lambda: 1.0
    return client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(server: FakeServer, sleeps: Sleeps) -> Iterator[SecureModelClient]:
    with make_client(server.handle, sleeps) as c:
        yield c


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
