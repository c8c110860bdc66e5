"""The demo against the stack ``stack.up()`` started: a tenant and a key; the tiny model into a
claim of the tenant by a Job; a CPU deployment of it through the Python SDK, which real vLLM
serves on the real node; a GPU deployment, which the scheduler places on a simulated H100 node
(nothing serves there); text generated through front door -> gateway -> vLLM with vLLM's token
counts; the subscription's usage."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.resources.modeldeployment import MD_LABEL

from .tiny_model import MODEL_URI, fill_model_claim

TENANT, CLIENT_ID = "demo", "demo-clinic"
TENANT_NAMESPACE = f"tenant-{TENANT}"
KEYS_NAMESPACE = "paitient-system"
CPU_DEPLOYMENT, GPU_DEPLOYMENT = "tiny-llama", "my-secure-model"
GPU_MODEL = "ZimaBlueAI/HuatuoGPT-o1-8B"
PROMPT = "Explain the importance of HIPAA compliance in healthcare AI"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def credentials(kube: Kube, run_dir: Path) -> str:
    """The demo tenant's key, made once and kept (0600) beside the cluster's own secrets."""
    store = run_dir / "demo-api-key"
    if kube.get("paitient.ai/v1alpha1", "Tenant", TENANT) is None:
        admin.create_tenant(kube, TENANT, CLIENT_ID, "standard", None, {"standard"})
        say(f"[demo] created tenant {TENANT} (client ID {CLIENT_ID})")
        store.unlink(missing_ok=True)
    keys = f"paitient-api-keys-{TENANT}"
    _wait(lambda: kube.get("v1", "Secret", keys, namespace=KEYS_NAMESPACE), 60,
          "the operator to set up the demo tenant")  # fmt: skip
    if not store.exists():
        key = admin.create_key(kube, CLIENT_ID, None, "demo", KEYS_NAMESPACE)[0]
        store.write_text(key)
        store.chmod(0o600)
        say(f"[demo] created an API key for {CLIENT_ID} (kept in {store})")
    return store.read_text().strip()


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)
    return found


def _gpu_placement(kube: Kube) -> str:
    """Where the scheduler put the GPU deployment's pod, and what that node is."""
    pods = kube.list("v1", "Pod", namespace=TENANT_NAMESPACE,
                     label_selector=f"{MD_LABEL}={GPU_DEPLOYMENT}")  # fmt: skip
    node_name = next((p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")), None)
    if node_name is None:
        return "not scheduled yet"
    labels = (kube.get("v1", "Node", node_name) or {}).get("metadata", {}).get("labels", {})
    return f"scheduled on {node_name} ({labels.get('nvidia.com/gpu.product', 'no GPU label')})"


def run_demo(base_url: str, ca_bundle: Path, kubeconfig: Path) -> None:
    from paitient_secure_model import SecureModelClient  # noqa: PLC0415

    kube = Kube.from_kubeconfig(str(kubeconfig))
    key = credentials(kube, kubeconfig.parent)
    client = SecureModelClient(
        api_key=key, client_id=CLIENT_ID, base_url=base_url, ca_bundle=ca_bundle
    )
    existing = {d.id for d in client.list_deployments()}  # a new key works on its first request
    started = time.monotonic()
    _wait(lambda: kube.get("v1", "Namespace", TENANT_NAMESPACE), 60, "the tenant's namespace")
    say(f"[demo] copying the tiny model into claim {TENANT_NAMESPACE}/tiny-model (a Job)")
    fill_model_claim(kube, TENANT_NAMESPACE)
    say(f"[demo] tiny model in its claim in {time.monotonic() - started:.0f} s")
    if CPU_DEPLOYMENT not in existing:
        deployment = client.deploy_model(
            model_name=MODEL_URI, deployment_name=CPU_DEPLOYMENT, use_gpu=False,
            cpu="1", memory="6Gi",
        )  # fmt: skip
        say(f"[demo] deploy_model({MODEL_URI!r}, use_gpu=False) -> id {deployment.id}, "
            f"status {deployment.status}: real vLLM (CPU) on the real node")  # fmt: skip
    if GPU_DEPLOYMENT not in existing:
        deployment = client.deploy_model(
            model_name=GPU_MODEL, deployment_name=GPU_DEPLOYMENT, use_gpu=True
        )
        say(f"[demo] deploy_model({GPU_MODEL!r}, use_gpu=True) -> id {deployment.id}, "
            f"status {deployment.status}: for the simulated H100 nodes")  # fmt: skip
    started = time.monotonic()
    seen: list[str] = []

    def progress(s: Any) -> None:
        line = f"{s.status} {s.message}".strip()
        if not seen or seen[-1] != line:
            seen.append(line)
            say(f"[demo] {CPU_DEPLOYMENT}: {line} (+{time.monotonic() - started:.0f} s)")

    say(f"[demo] waiting for {CPU_DEPLOYMENT}: vLLM starts on the CPU, about a minute")
    client.wait_until_ready(CPU_DEPLOYMENT, timeout=600, poll_interval=2, on_progress=progress)
    say(
        f"[demo] {CPU_DEPLOYMENT} is ready (servable) {time.monotonic() - started:.0f} s after deploy"
    )
    result = client.generate(
        deployment_id=CPU_DEPLOYMENT, prompt=PROMPT, max_tokens=32, temperature=0.7
    )
    usage = result.usage
    say(f"[demo] generate on {CPU_DEPLOYMENT} (front door -> gateway -> real vLLM): "
        f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion = "
        f"{usage.total_tokens} tokens (vLLM's own count)")  # fmt: skip
    say(f"[demo] the completion (random weights, so no meaning): {result.text!r}")
    gpu = client.get_deployment_status(GPU_DEPLOYMENT)
    say(f"[demo] {GPU_DEPLOYMENT}: {_gpu_placement(kube)}, status {gpu.status}: a simulated "
        "node runs nothing, so GPU deployments are scheduled but never served here")  # fmt: skip
    deadline = time.monotonic() + 60
    sub = client.get_subscription()
    while sub.current_usage == 0 and time.monotonic() < deadline:
        time.sleep(1)  # gateways flush usage every few seconds; the operator sums it
        sub = client.get_subscription()
    say(f"[demo] subscription: tier {sub.tier}, usage {sub.current_usage}/{sub.usage_limit} tokens")
    env = f"PAITIENT_BASE_URL={base_url} PAITIENT_CA_BUNDLE={ca_bundle} PAITIENT_API_KEY={key} PAITIENT_CLIENT_ID={CLIENT_ID}"
    say(
        "\nThe stack keeps running: operator, front door and the tiny model's pod on the real "
        f"node, the front door reached through 127.0.0.1 only (HTTPS, certificate of a local CA). "
        "Call it with:\n"
        f"  curl -s --cacert {ca_bundle} {base_url}/deployments/{CPU_DEPLOYMENT}/generate -H 'Authorization: Bearer {key}' -H 'X-Client-ID: {CLIENT_ID}' -d '{{\"prompt\": \"Hello\", \"max_tokens\": 8}}'\n"
        f"  {env} .venv/bin/python -c "
        '"from paitient_secure_model import SecureModelClient; print(SecureModelClient().get_subscription())"\n'
        f"  {env} node -e "
        "\"new (require('./sdk/js').SecureModelClient)().getSubscription().then(console.log)\"\n"
        "Stop everything with: make down\n"
    )
