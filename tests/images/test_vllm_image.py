"""The vllm-cpu image serves the tiny model, as the operator's CPU model pod runs it.

The pod is the one the operator renders for a ``useGpu: false`` ModelDeployment with
``model.uri: pvc://…``: first the tiny-model image copies the model into the "PVC" (a host
directory owned by the pods' user, as fsGroup makes it), then the vLLM container (its command,
arguments and environment; read-only root, no capabilities, memory-backed /tmp and /dev/shm,
the model read-only, the cache volume writable) and the gateway container in front of it, with
its serving certificate in the Secret volume the pod names, called over verified TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from paitient_images.tinymodel import MAX_MODEL_LEN, MODEL_NAME
from paitient_localcluster.host.processes import free_port
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.config import OperatorConfig
from tests.images.conftest import LOOPBACK, owned_by_nonroot, wait_answers
from tests.images.podman import Container, Podman, pod_flags
from tests.images.serving_tls import serving_volume
from tests.standins.client import sync_call
from tests.standins.processes import write_keys_file
from tests.unit.operator.factories import make_md

# vLLM on CPU sizes its KV cache from this (GiB); without it, a fraction of the host's memory.
KV_CACHE_GIB = "1"


def test_tiny_model_image_copies_the_model_into_a_volume(
    image_of: Callable[[str], str], podman: Podman, tmp_path: Path
) -> None:
    volume = owned_by_nonroot(tmp_path / "pvc")
    flags = ["--network", "none", "--read-only", "--cap-drop=ALL"]
    flags += ["--security-opt", "no-new-privileges", "--volume", f"{volume}:/target"]
    for _ in range(2):  # a rerun of the Job finds a complete copy and leaves it
        done = podman.execute(image_of("tiny-model"), flags, [])
        assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in (volume / MODEL_NAME).iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert (volume / MODEL_NAME / "config.json").stat().st_uid == 65532


def test_vllm_image_serves_the_tiny_model_behind_the_gateway(
    image_of: Callable[[str], str],
    podman: Podman,
    started: Callable[..., Container],
    tmp_path: Path,
) -> None:
    vllm_port, gateway_port = free_port(), free_port()
    md = (
        make_md("tiny")
        .cpu_only()
        .uri(f"pvc://models/{MODEL_NAME}")
        .storage(storage_class="enc")
        .resources(cpu="2", memory="8Gi")
        .obj()
    )
    config = OperatorConfig.model_validate(
        {
            "encryptedStorageClasses": ["enc"],
            "vllmPort": vllm_port,
            "gateway": {"port": gateway_port},
        }
    )
    pod = build_deployment(md, config)["spec"]["template"]["spec"]
    vllm, gateway = pod["containers"]
    assert vllm["image"] == "ghcr.io/paitient/vllm-cpu:v0.32.0"

    pvc = owned_by_nonroot(tmp_path / "pvc")
    copy_flags = [
        "--network",
        "none",
        "--read-only",
        "--cap-drop=ALL",
        "--volume",
        f"{pvc}:/target",
    ]
    copied = podman.execute(image_of("tiny-model"), copy_flags, [])
    assert copied.returncode == 0, copied.stderr
    cache = owned_by_nonroot(tmp_path / "cache")
    volumes = {"model-source": str(pvc), "model-cache": str(cache)}
    server = started(
        f"vllm-{vllm_port}",
        image_of("vllm-cpu"),
        pod_flags(pod, vllm, volumes, env={"VLLM_CPU_KVCACHE_SPACE": KV_CACHE_GIB}),
        vllm["args"],
    )
    secrets = owned_by_nonroot(tmp_path / "secrets", 0o755)
    callers = write_keys_file(
        secrets / "keys.json", [{"name": "acme", "clientId": "acme-app", "namespace": md.namespace}]
    )
    (secrets / "keys.json").chmod(0o644)
    token = owned_by_nonroot(tmp_path / "token")
    tls = serving_volume(md, config, pod, tmp_path / "serving-tls")
    gateway_flags = pod_flags(
        pod,
        gateway,
        {"gateway-api-token": str(token), **tls.host_paths()},
        env={"PAITIENT_GATEWAY_HOST": LOOPBACK},
    )
    front = started(
        f"gateway-{gateway_port}",
        image_of("paitient-gateway"),
        [*gateway_flags, "--volume", f"{secrets}:/etc/paitient-keys:ro"],
        ["--keys-file", "/etc/paitient-keys/keys.json"],
    )
    # Loading and warming up (it compiles C++ on first start) takes a minute or two here.
    wait_answers(f"http://{LOOPBACK}:{vllm_port}/health", server, 600, "vLLM healthy")
    # The gateway called as the front door calls it: TLS, the CA and the Service name verified.
    client = tls.client(gateway_port, timeout=120)
    wait_answers(lambda: client.call("GET", "/healthz/ready")[0], front, 60, "gateway ready")

    models = sync_call("GET", f"http://{LOOPBACK}:{vllm_port}/v1/models").json()["data"]
    assert [(m["id"], m["max_model_len"]) for m in models] == [("tiny", MAX_MODEL_LEN)]
    headers = callers["acme"].headers()
    body = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8}
    status, _, result = client.call("POST", "/v1/chat/completions", body, headers=headers)
    assert status == 200, result
    assert result["model"] == "tiny"
    assert 1 <= result["usage"]["completion_tokens"] <= 8
    assert result["usage"]["prompt_tokens"] > 2, "the chat template's tokens are counted"
    assert result["choices"][0]["finish_reason"] in ("stop", "length")
    # vLLM's own validation reaches the caller through the gateway.
    too_long = {**body, "max_tokens": MAX_MODEL_LEN + 1}
    status, _, refused = client.call("POST", "/v1/chat/completions", too_long, headers=headers)
    assert status == 400, refused
    assert server.running(), server.logs()
