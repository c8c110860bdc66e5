"""Contract tests: the API reference's examples, in Python and JavaScript, against the same
running stack (local cluster, operator, front door, the local data plane running the gateway
with the configuration the operator rendered, and the vLLM stand-in)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from tests.contract.service_errors import FIXTURE, answer_of, credentials
from tests.integration.dataplane_processes import model_processes
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.gateway_tls import gateway
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for
from tests.standins.processes import configure_standin
from tests.unit.operator.factories import make_md

REPO = Path(__file__).resolve().parents[2]
SEED = importlib.util.spec_from_file_location(
    "seed_examples", REPO / "sdk/python/tests/seed_examples.py"
)
assert SEED is not None and SEED.loader is not None
seed_examples = importlib.util.module_from_spec(SEED)
SEED.loader.exec_module(seed_examples)


def _seed_python(tenant: dict[str, str]) -> list[str]:
    first = seed_examples.SEED_EXAMPLES[0]
    first = first.replace('"your-api-key"', repr(tenant["key"])).replace(
        '"your-client-id"', repr(tenant["client_id"])
    )
    namespace: dict[str, object] = {"__name__": "__seed__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for snippet in [first, *seed_examples.SEED_EXAMPLES[1:]]:
            exec(compile(snippet, "<seed>", "exec"), namespace)
    return out.getvalue().splitlines()


def test_python_seed_examples_run_as_written(
    stack: ApiProcess, stack_tenant: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAITIENT_BASE_URL", stack.base_url)
    lines = _seed_python(stack_tenant)
    assert len(lines) == 4, lines
    generated, tier, usage, auth_error = lines
    assert generated.startswith("Explain the importance of HIPAA compliance")  # the stand-in echoes
    assert tier == "Tier: standard"
    assert usage.startswith("Usage: ") and usage.endswith("/10000000")
    assert auth_error == "Authentication error: invalid API key or client ID"


def test_javascript_seed_examples_run_as_written(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube
) -> None:
    # The Python run created my-secure-model in the same tenant: start from a clean slate.
    kube.delete(
        "paitient.ai/v1alpha1",
        "ModelDeployment",
        "my-secure-model",
        namespace=stack_tenant["namespace"],
    )
    wait_for(
        lambda: (
            kube.get(
                "paitient.ai/v1alpha1",
                "ModelDeployment",
                "my-secure-model",
                namespace=stack_tenant["namespace"],
            )
            is None
        )
    )
    env = {
        **os.environ,
        "PAITIENT_BASE_URL": stack.base_url,
        "PAITIENT_SEED_API_KEY": stack_tenant["key"],
        "PAITIENT_SEED_CLIENT_ID": stack_tenant["client_id"],
    }
    done = subprocess.run(
        ["node", str(REPO / "tests/integration/seed_runner.js")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out, err = done.stdout.splitlines(), done.stderr.splitlines()
    assert out[0].startswith("Explain the importance of HIPAA compliance")
    assert out[1] == "Tier: standard" and out[2].startswith("Usage: ")
    assert err == ["Authentication error: invalid API key or client ID"]


def test_invalid_requests_raise_validation_error_in_both_languages(
    stack: ApiProcess, stack_tenant: dict[str, str]
) -> None:
    client = sdk.SecureModelClient(
        api_key=stack_tenant["key"], client_id=stack_tenant["client_id"], base_url=stack.base_url
    )
    with pytest.raises(sdk.ValidationError):
        client.generate(deployment_id="deployment-123", prompt="x", max_tokens=-5)
    script = (
        "const {SecureModelClient, ValidationError} = require(process.argv[1]);"
        "new SecureModelClient({}).generate({deploymentId: 'deployment-123', prompt: 'x', temperature: 9})"
        ".then(() => process.exit(2), (e) => process.exit(e instanceof ValidationError ? 0 : 3));"
    )
    env = {
        **os.environ,
        "PAITIENT_BASE_URL": stack.base_url,
        "PAITIENT_API_KEY": stack_tenant["key"],
        "PAITIENT_CLIENT_ID": stack_tenant["client_id"],
    }
    assert (
        subprocess.run(["node", "-e", script, str(REPO / "sdk/js")], env=env, timeout=60).returncode
        == 0
    )


def test_streaming_generate_through_the_stack(
    stack: ApiProcess, stack_tenant: dict[str, str]
) -> None:
    client = sdk.SecureModelClient(
        api_key=stack_tenant["key"], client_id=stack_tenant["client_id"], base_url=stack.base_url
    )
    chunks = list(
        client.generate_stream(deployment_id="deployment-123", prompt="one two three", max_tokens=6)
    )
    text = "".join(c.text for c in chunks)
    assert text.strip()
    final = chunks[-1]
    assert (
        final.finish_reason is not None
        and final.usage is not None
        and final.usage.completion_tokens == 6
    )


# -- sdk/testdata/errors.json, replayed against the running stack ------------------------------

FIXTURE_CASES: dict[str, Any] = json.loads(FIXTURE.read_text())["errors"]
# Cases the running stack cannot provoke, and why (they come from the gateway's and the front
# door's own code in tests/contract/service_errors.py, which a unit test keeps in sync):
NOT_REPLAYED = {
    "rate_limited": "needs a tier of one request a minute; the tiers are the operator's",
    "model_timeout": "needs the gateway's 120 s read timeout to pass",
    "internal_error": "needs a failure inside the front door",
}
# Each replayed by a test below, with what provokes it.
BY_SETUP = {
    "suspended",
    "deployment_not_ready",
    "usage_limit_reached",
    "model_failed",
    "model_loading",
    "gateway_unreachable",
    "stream_interrupted",
}
REPLAYED = {
    name: case
    for name, case in FIXTURE_CASES.items()
    if name not in NOT_REPLAYED and name not in BY_SETUP
}


def test_every_recorded_case_is_replayed_or_said_why_not() -> None:
    assert set(FIXTURE_CASES) == set(REPLAYED) | BY_SETUP | set(NOT_REPLAYED)


def _replay(
    name: str, base_url: str, headers: dict[str, str], body: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the front door answered, what the fixture recorded) for the fixture's request."""
    case = FIXTURE_CASES[name]
    request = case["request"]
    url = base_url.removesuffix("/v1") + request["path"]
    status, got, answer = call(request["method"], url, body or request.get("body"), headers)
    return answer_of(status, got, answer), {k: case[k] for k in ("status", "headers", "body")}


@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_the_sdks_error_fixture_is_what_the_running_front_door_answers(
    stack: ApiProcess, stack_tenant: dict[str, str], name: str
) -> None:
    """The SDKs' stand-ins answer from sdk/testdata/errors.json; the front door on the local
    cluster (the real API server behind it) answers each of its cases the same."""
    request = FIXTURE_CASES[name]["request"]
    headers = credentials(
        request.get("credentials", "good"), stack_tenant["key"], stack_tenant["client_id"]
    )
    answered, recorded = _replay(name, stack.base_url, headers)
    assert answered == recorded


@pytest.fixture(scope="module")
def faulty(stack: ApiProcess, kube: Kube) -> Iterator[dict[str, str]]:
    """A tenant of this module's own, with deployments a test may break: ``deployment-123``
    (the name the recorded requests give) and ``warming``, which waits for a GPU nobody has."""
    tenant = make_tenant(kube)
    namespace = tenant["namespace"]
    try:
        kube.create(make_md("deployment-123").namespace(namespace).gpus(1)
                    .storage("5Gi", "encrypted-local").manifest())  # fmt: skip
        kube.create(make_md("warming").namespace(namespace).gpus(1).product("NVIDIA-B200")
                    .storage("5Gi", "encrypted-local").manifest())  # fmt: skip
        gateway(_routes(stack), f"{namespace}/deployment-123", kube, timeout=120)
        # The front door routes only to a Ready deployment: a gateway that serves is not enough.
        wait_for(lambda: _phase(kube, namespace, "deployment-123") == "Ready", timeout=120,
                 what="deployment-123 Ready")  # fmt: skip
        wait_for(lambda: _phase(kube, namespace, "warming") == "Pending", timeout=60,
                 what="the deployment that waits for a GPU")  # fmt: skip
        yield tenant
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)


def _routes(stack: ApiProcess) -> Path:
    return Path(stack.gateway_url.removeprefix("file:"))


def _phase(kube: Kube, namespace: str, name: str) -> str | None:
    md = kube.get("paitient.ai/v1alpha1", "ModelDeployment", name, namespace=namespace) or {}
    return (md.get("status") or {}).get("phase")


def _auth(tenant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}


def test_a_suspended_tenants_answer_is_the_recorded_one(stack: ApiProcess, kube: Kube) -> None:
    tenant = make_tenant(kube)
    try:
        admin.set_suspended(kube, tenant["name"], True)
        wait_for(lambda: call("GET", f"{stack.base_url}/subscription", headers=_auth(tenant))[0]
                 == 403, what="the suspension")  # fmt: skip
        answered, recorded = _replay("suspended", stack.base_url, _auth(tenant))
        assert answered == recorded
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)


def test_not_ready_and_the_gateways_refusals_are_the_recorded_answers(
    stack: ApiProcess, faulty: dict[str, str], kube: Kube
) -> None:
    """A deployment waiting for a GPU (the front door's 503); then, behind a real gateway, a
    model that fails (502) and one that is not listening, as while loading (503, Retry-After 5);
    a tenant whose usage limit is spent (the gateway's 429: its Retry-After runs until the
    period ends, so only its presence is compared)."""
    headers = _auth(faulty)
    answered, recorded = _replay("deployment_not_ready", stack.base_url, headers)
    assert answered == recorded
    model = model_processes(_routes(stack), f"{faulty['namespace']}/deployment-123")
    configure_standin(model.standin_url, fail="status500")
    answered, recorded = _replay("model_failed", stack.base_url, headers)
    assert answered == recorded
    configure_standin(model.standin_url, fail=None)
    kube.patch(
        "paitient.ai/v1alpha1", "Tenant", faulty["name"], {"spec": {"usageLimitOverride": 1}}
    )
    wait_for(lambda: _replay("usage_limit_reached", stack.base_url, headers)[0]["status"] == 429,
             what="the usage limit of 1 token at the gateway")  # fmt: skip
    answered, recorded = _replay("usage_limit_reached", stack.base_url, headers)
    assert int(answered["headers"].pop("Retry-After")) >= 1
    assert recorded["headers"].pop("Retry-After") == "3600"
    assert answered == recorded
    kube.patch(
        "paitient.ai/v1alpha1", "Tenant", faulty["name"], {"spec": {"usageLimitOverride": None}}
    )
    wait_for(lambda: _replay("model_failed", stack.base_url, headers)[0]["status"] != 429,
             what="the usage limit lifted")  # fmt: skip
    model.kill_standin()  # the model server's port closes, as while it loads
    answered, recorded = _replay("model_loading", stack.base_url, headers)
    assert answered == recorded


def test_a_stream_cut_and_a_gateway_gone_are_the_recorded_answers(
    stack: ApiProcess, faulty: dict[str, str], kube: Kube
) -> None:
    """The gateway goes away after the first text of a stream (the stand-in holds the stream
    there): the last event is the recorded one; the next request finds no gateway (502)."""
    namespace = faulty["namespace"]
    kube.create(
        make_md("cut").namespace(namespace).gpus(1).storage("5Gi", "encrypted-local").manifest()
    )
    gateway(_routes(stack), f"{namespace}/cut", kube, timeout=120)
    model = model_processes(_routes(stack), f"{namespace}/cut")
    configure_standin(model.standin_url, hold_after=1)
    client = sdk.SecureModelClient(
        api_key=faulty["key"], client_id=faulty["client_id"], base_url=stack.base_url,
        max_retries=0,
    )  # fmt: skip
    # As a client does: ready before the stream (the front door may not know of the route yet).
    client.wait_until_ready("cut", timeout=120, poll_interval=0.25)
    events: list[Any] = []
    with pytest.raises(sdk.ServiceError) as cut:
        for chunk in client.generate_stream(deployment_id="cut", prompt="Hello", max_tokens=20):
            events.append(chunk)
            if len(events) == 1:
                model.kill_gateway()
    client.close()
    assert events and events[0].text  # the first text arrived
    recorded = FIXTURE_CASES["stream_interrupted"]["event"]["error"]
    assert (cut.value.type, str(cut.value.message)) == (recorded["type"], recorded["message"])
    answered, recorded_502 = _replay(
        "gateway_unreachable", stack.base_url, _auth(faulty),
        body={**FIXTURE_CASES["gateway_unreachable"]["request"]["body"], "deployment_id": "cut"},
    )  # fmt: skip
    assert answered["status"] == 502
    assert answered["body"]["error"]["message"] == "the gateway of deployment cut is unreachable"
    assert recorded_502["body"]["error"]["message"] == (
        "the gateway of deployment deployment-123 is unreachable"
    )


def test_no_prompt_or_completion_reaches_the_front_doors_or_the_gateways_log(
    stack: ApiProcess, stack_tenant: dict[str, str]
) -> None:
    """Generate, stream and chat (the /v1 routes and the OpenAI ones) with a marker in the
    prompt, which the stand-in echoes into the completion: the running front door's log and
    the deployment's gateway's log hold the requests' audit lines, never the marker."""
    marker = f"PATIENTNOTE{os.getpid()}X"
    prompt = f"summarise {marker} for the ward"
    headers = {
        "Authorization": f"Bearer {stack_tenant['key']}",
        "X-Client-ID": stack_tenant["client_id"],
    }
    logs = [stack.log, *(_routes(stack).parent / "dataplane" / "logs").glob(
        f"gateway-{stack_tenant['namespace']}-deployment-123-*.log"
    )]  # fmt: skip
    before = [log.stat().st_size for log in logs]
    with sdk.SecureModelClient(
        api_key=stack_tenant["key"], client_id=stack_tenant["client_id"], base_url=stack.base_url
    ) as client:
        text = client.generate(deployment_id="deployment-123", prompt=prompt, max_tokens=8).text
        assert marker in text  # the completion carries it too
        streamed = "".join(
            c.text for c in client.generate_stream(deployment_id="deployment-123", prompt=prompt)
        )
        assert marker in streamed
        chat = [{"role": "user", "content": prompt}]
        assert marker in client.chat("deployment-123", chat, max_tokens=8).text
    for path, body in (
        ("/completions", {"model": "deployment-123", "prompt": prompt, "max_tokens": 8}),
        ("/chat/completions", {"model": "deployment-123", "messages": chat, "stream": True}),
    ):
        status, _, answer = call("POST", f"{stack.base_url}{path}", body, headers)
        assert status == 200 and marker in json.dumps(answer), answer
    written = "".join(
        log.read_bytes()[start:].decode(errors="replace")
        for log, start in zip(logs, before, strict=True)
    )
    assert len(logs) >= 2 and written.count('"request_id"') >= 5  # the audit lines are there
    assert marker not in written
