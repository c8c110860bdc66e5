"""Fixtures for tests against a real API server: clients and throwaway namespaces."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import paitient_secure_model as sdk
import pytest
from kubernetes import client, config

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.resources.install import install_crds
from tests.integration import frontdoor_process
from tests.integration.frontdoor_process import CA_BUNDLE_ENV, ApiProcess, FrontDoorCA
from tests.integration.operator_process import OperatorProcess
from tests.integration.real_model import RealModel, start_real_model, stop_real_model
from tests.integration.stack_helpers import make_tenant, start_data_plane

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def front_door_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorCA]:
    """Every test front door serves HTTPS with a certificate from this CA, as the product's
    front door serves TLS; the SDKs (``PAITIENT_CA_BUNDLE``), Node (``NODE_EXTRA_CA_CERTS``:
    the openai package) and ``call`` trust it for the session."""
    ca = FrontDoorCA(tmp_path_factory.mktemp("front-door-ca"))
    names = (CA_BUNDLE_ENV, "NODE_EXTRA_CA_CERTS")
    saved = {name: os.environ.get(name) for name in names}
    frontdoor_process.SESSION_CA = ca
    os.environ.update({name: str(ca.bundle) for name in names})
    try:
        yield ca
    finally:
        frontdoor_process.SESSION_CA = None
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
def dataplane_process(
    kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The local data plane, for every test that makes ModelDeployments: it runs each model
    pod's gateway and reports the pod Ready from the gateway's probe, as a kubelet would (KWOK
    leaves model pods not Ready). Yields its process and its routes file."""
    plane, routes = start_data_plane(kubeconfig, tmp_path_factory.mktemp("dataplane"))
    try:
        yield plane, routes
    finally:
        plane.terminate()
        plane.wait(timeout=30)


@pytest.fixture(scope="session")
def dataplane(dataplane_process: tuple[subprocess.Popen[bytes], Path]) -> Path:
    """The local data plane's routes file (``dataplane_process``)."""
    return dataplane_process[1]


@pytest.fixture(scope="session")
def operator(
    kubeconfig: Path, kube: Kube, dataplane: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(kube)
    proc = OperatorProcess.for_cluster(
        kubeconfig,
        tmp_path_factory.mktemp("op") / "operator.log",
        # As `make up` runs it: the local encrypted class serves deployments made through the
        # API (which names no class), so the SDKs' deploy -> ready -> generate flow can run.
        env={
            "PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local",
            # The autoscaler reads the data plane's gateways where it runs them (127.0.0.1),
            # every second; a scaled-down gateway serves one more second, not ready, then
            # drains (tests/integration/test_autoscaling.py).
            "PAITIENT_AUTOSCALING_GATEWAY_ADDRESSES": f"file:{dataplane}",
            "PAITIENT_AUTOSCALING_INTERVAL_SECONDS": "1",
            "PAITIENT_DRAIN_SHUTDOWN_DELAY_SECONDS": "1",
        },
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def stack(
    operator: OperatorProcess,
    dataplane: Path,
    kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiProcess]:
    """Front door routing generate through the local data plane's gateways."""
    api = ApiProcess(
        kubeconfig, tmp_path_factory.mktemp("stack") / "api.log", gateway_url=f"file:{dataplane}"
    )
    try:
        api.start()
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="session")
def stack_tenant(stack: ApiProcess, kube: Kube) -> Iterator[dict[str, str]]:
    """A tenant with a key and a Ready deployment "deployment-123" (the name the reference's
    generate example uses), served through the local data plane."""
    info = make_tenant(kube)
    client = sdk.SecureModelClient(
        api_key=info["key"], client_id=info["client_id"], base_url=stack.base_url
    )
    # The generate example names "deployment-123": make it exist, on the encrypted class.
    kube.create(
        {
            "apiVersion": "paitient.ai/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "deployment-123", "namespace": info["namespace"]},
            "spec": {"model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}, "useGpu": True, "gpu": {"count": 1},
                     "storage": {"size": "10Gi", "storageClassName": "encrypted-local"}},
        }
    )  # fmt: skip
    client.wait_until_ready("deployment-123", timeout=120, poll_interval=0.5)
    yield info
    admin.delete_tenant(kube, info["name"], force=True)


@pytest.fixture(scope="session")
def real_model(operator: OperatorProcess, kube: Kube) -> Iterator[RealModel]:
    """The session's one real vLLM deployment on the real node (tests/integration/real_model.py),
    shared by every test that needs real vLLM behind a real gateway; the session's operator
    reconciles it (a test that pauses that operator hands it to another)."""
    model = start_real_model(kube)
    try:
        yield model
    finally:
        stop_real_model(kube, model)
