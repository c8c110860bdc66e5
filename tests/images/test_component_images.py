"""The gateway, front door and operator images, each run by podman + runc exactly as its pod
runs it: the container the operator or the chart renders (command, arguments, environment,
user, read-only root, no capabilities, no-new-privileges, memory-backed /tmp, the gateway's
serving certificate in its Secret volume). Listeners move from 0.0.0.0 to 127.0.0.1, as the
containers share the host's network namespace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paitient_common.kubeapi import Kube
from paitient_common.resources.install import install_crds
from paitient_localcluster.host.processes import free_port
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.config import OperatorConfig
from tests.images.conftest import LOOPBACK, inline_kubeconfig, owned_by_nonroot, wait_answers
from tests.images.podman import Container, pod_flags
from tests.images.serving_tls import serving_volume
from tests.integration.operator_process import OperatorProcess
from tests.standins.client import sync_call
from tests.standins.processes import start_standin, write_keys_file
from tests.unit.operator.factories import make_md
from tests.unit.test_helm_chart import render


def test_gateway_image_serves_a_completion_through_the_standin(
    image_of: Callable[[str], str],
    started: Callable[..., Container],
    tmp_path: Path,
) -> None:
    gateway_port = free_port()
    md = make_md("gw").cpu_only().storage(storage_class="enc").obj()
    standin = start_standin(tmp_path, model=md.served_model_name)
    try:
        config = OperatorConfig.model_validate(
            {
                "encryptedStorageClasses": ["enc"],
                "vllmPort": standin.port,
                "gateway": {"port": gateway_port},
            }
        )
        pod = build_deployment(md, config)["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "gateway")
        secrets = owned_by_nonroot(tmp_path / "secrets")
        callers = write_keys_file(
            secrets / "keys.json",
            [{"name": "acme", "clientId": "acme-app", "namespace": md.namespace}],
        )
        (secrets / "keys.json").chmod(0o644)
        tls = serving_volume(md, config, pod, tmp_path / "serving-tls")
        flags = pod_flags(
            pod,
            container,
            {"gateway-api-token": str(owned_by_nonroot(tmp_path / "token")), **tls.host_paths()},
            env={"PAITIENT_GATEWAY_HOST": LOOPBACK},
        )
        flags += ["--volume", f"{secrets}:/etc/paitient-keys:ro"]
        gateway = started(
            f"gateway-{gateway_port}",
            image_of("paitient-gateway"),
            flags,
            ["--keys-file", "/etc/paitient-keys/keys.json"],
        )
        # Called as the front door calls it: TLS, the CA and the Service name verified.
        client = tls.client(gateway_port)
        wait_answers(lambda: client.call("GET", "/healthz/ready")[0], gateway, 60, "gateway ready")
        status, _, body = client.call(
            "POST",
            "/v1/completions",
            {"prompt": "a b c", "max_tokens": 4},
            headers=callers["acme"].headers(),
        )
        assert status == 200, body
        assert body["usage"]["completion_tokens"] == 4
        status, _, body = client.call("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1})
        assert status == 401, body
    finally:
        standin.stop()


def _chart_container(
    values: dict[str, Any], component: str
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    # Without the chart's store: these images answer their probes without one, and the
    # store's own image test (test_store_image.py) runs it with the secrets the operator makes.
    objects = render({**values, "store": {"enabled": False}})
    deployment = next(
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    )
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0], objects


def _on_loopback(args: list[str]) -> list[str]:
    return [a.replace("0.0.0.0", LOOPBACK) for a in args]


@pytest.fixture
def crds(kubeconfig: Path) -> None:
    """The CRDs the components read (a fresh cluster has none; the chart installs them)."""
    install_crds(Kube.from_kubeconfig(str(kubeconfig)))


def _start_operator(started: Callable[..., Container], kube: Path, tmp_path: Path) -> None:
    health, metrics = free_port(), free_port()
    values = {"operator": {"healthPort": health, "metrics": {"port": metrics}}}
    pod, container, objects = _chart_container(values, "operator")
    assert container["command"] == ["paitient-operator"]
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    config_dir = owned_by_nonroot(tmp_path / "config", 0o755)
    (config_dir / "operator.yaml").write_text(config_map["data"]["operator.yaml"])
    flags = pod_flags(pod, container, {"config": str(config_dir)})
    flags += ["--volume", f"{kube}:/etc/kube:ro"]
    operator = started(
        f"operator-{health}",
        "ghcr.io/paitient/paitient-operator:" + container["image"].rsplit(":", 1)[1],
        flags,
        [*_on_loopback(container["args"]), "--kubeconfig", "/etc/kube/config"],
    )
    # kopf answers once its start-up handlers made the system objects (the key pepper).
    wait_answers(f"http://{LOOPBACK}:{health}/healthz", operator, 90, "operator live")
    metrics_text = sync_call("GET", f"http://{LOOPBACK}:{metrics}/metrics").body.decode()
    assert "python_info" in metrics_text
    assert "Traceback" not in operator.logs(), operator.logs()


@pytest.mark.integration
@pytest.mark.usefixtures("crds")
def test_operator_and_front_door_images_answer_their_probes(
    image_of: Callable[[str], str],
    started: Callable[..., Container],
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    image_of("paitient-operator")
    kube = owned_by_nonroot(tmp_path / "kube")
    inline_kubeconfig(kubeconfig, kube / "config")
    # One operator reconciles a cluster at a time: the session's own pauses meanwhile.
    with OperatorProcess.others_paused():
        _start_operator(started, kube, tmp_path)
        port = free_port()
        # Plain HTTP: the probes are what is checked here (TLS: tests/integration/test_tls.py).
        front_door = {"port": port, "tls": {"enabled": False}}
        pod, container, _ = _chart_container({"frontDoor": front_door}, "api")
        assert container["command"] == ["paitient-api"]
        flags = [*pod_flags(pod, container, {}), "--volume", f"{kube}:/etc/kube:ro"]
        api = started(
            f"api-{port}",
            image_of("paitient-api"),
            flags,
            [*_on_loopback(container["args"]), "--kubeconfig", "/etc/kube/config"],
        )
        url = f"http://{LOOPBACK}:{port}"
        wait_answers(f"{url}/healthz", api, 60, "front door live")
        # Ready once it read the keys and the pepper the operator made.
        wait_answers(f"{url}/readyz", api, 60, "front door ready")
        assert sync_call("GET", f"{url}/v1/deployments").status == 401
