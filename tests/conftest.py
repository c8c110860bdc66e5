"""Shared test setup: the local control-plane fixtures come from paitient_localcluster; one
podman store per session for the tests that run the built images (tests/images, tests/vllm);
a real redis-server per test that needs the shared store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.images.podman import Podman
from tests.images.podman_store import session_store
from tests.storeserver import RedisServer

pytest_plugins = ["paitient_localcluster.pytest_plugin"]


@pytest.fixture(scope="session")
def podman_store() -> Iterator[Podman]:
    """The session's podman: made on first use, each archive loaded into it once (lazily, by
    ``Podman.load``) and shared by both folders; removed with everything in it at the end."""
    with session_store() as podman:
        yield podman


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 with a password, stopped after the test."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()
