"""Fixtures for tests against a real API server: clients and throwaway namespaces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from paitient_common.kubeapi import Kube
from paitient_operator.resources.install import install_crds
from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> Kube:
    return Kube.from_kubeconfig(str(kubeconfig))


@pytest.fixture(scope="session")
def operator(
    kubeconfig: Path, kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(kube)
    own = kubeconfig.parent / "operator.kubeconfig"  # its own identity, for the audit log
    proc = OperatorProcess(
        own if own.is_file() else kubeconfig, tmp_path_factory.mktemp("op") / "operator.log"
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
