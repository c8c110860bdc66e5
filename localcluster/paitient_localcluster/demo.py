"""The demo: a tenant and a key, a model deployed through the Python SDK, text generated, and
the subscription's usage, against the stack ``stack.up()`` started."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from paitient_cli import admin
from paitient_common.kubeapi import Kube

TENANT, CLIENT_ID, DEPLOYMENT = "demo", "demo-clinic", "my-secure-model"
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
    deadline = time.monotonic() + 60
    while (
        kube.get("v1", "Secret", f"paitient-api-keys-{TENANT}", namespace="paitient-system") is None
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("the operator did not set up the demo tenant in 60 s")
        time.sleep(0.5)
    if not store.exists():
        key = admin.create_key(kube, CLIENT_ID, None, "demo", "paitient-system")[0]
        store.write_text(key)
        store.chmod(0o600)
        say(f"[demo] created an API key for {CLIENT_ID} (kept in {store})")
    return store.read_text().strip()


def run_demo(base_url: str, ca_bundle: Path, kubeconfig: Path) -> None:
    from paitient_secure_model import SecureModelClient  # noqa: PLC0415

    kube = Kube.from_kubeconfig(str(kubeconfig))
    key = credentials(kube, kubeconfig.parent)
    client = SecureModelClient(
        api_key=key, client_id=CLIENT_ID, base_url=base_url, ca_bundle=ca_bundle
    )
    existing = {d.id for d in client.list_deployments()}  # a new key works on its first request
    if DEPLOYMENT not in existing:
        deployment = client.deploy_model(
            model_name="ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name=DEPLOYMENT, use_gpu=True
        )
        say(f"[demo] deploy_model -> id {deployment.id}, status {deployment.status}")
    status = client.wait_until_ready(
        DEPLOYMENT,
        timeout=300,
        poll_interval=1,
        on_progress=lambda s: say(f"[demo] {DEPLOYMENT}: {s.status} {s.message}"),
    )
    say(f"[demo] {DEPLOYMENT} is {status.status}")
    # Ready means servable: its gateway answers already.
    result = client.generate(
        deployment_id=DEPLOYMENT, prompt=PROMPT, max_tokens=64, temperature=0.7
    )
    say(f"[demo] generate -> {result.usage.total_tokens} tokens: {result.text[:120]!r}")
    deadline = time.monotonic() + 60
    sub = client.get_subscription()
    while sub.current_usage == 0 and time.monotonic() < deadline:
        time.sleep(1)  # gateways flush usage every few seconds; the operator sums it
        sub = client.get_subscription()
    say(f"[demo] subscription: tier {sub.tier}, usage {sub.current_usage}/{sub.usage_limit} tokens")
    env = f"PAITIENT_BASE_URL={base_url} PAITIENT_CA_BUNDLE={ca_bundle} PAITIENT_API_KEY={key} PAITIENT_CLIENT_ID={CLIENT_ID}"
    say(
        "\nThe stack keeps running (HTTPS, its certificate from a local CA). Call it with:\n"
        f"  curl -s --cacert {ca_bundle} {base_url}/subscription -H 'Authorization: Bearer {key}' -H 'X-Client-ID: {CLIENT_ID}'\n"
        f"  {env} .venv/bin/python -c "
        '"from paitient_secure_model import SecureModelClient; print(SecureModelClient().get_subscription())"\n'
        f"  {env} node -e "
        "\"new (require('./sdk/js').SecureModelClient)().getSubscription().then(console.log)\"\n"
        "Stop everything with: make down\n"
    )
