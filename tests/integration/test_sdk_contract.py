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
from pathlib import Path

import paitient_secure_model as sdk
import pytest

from paitient_common.kubeapi import Kube
from tests.contract.service_errors import FIXTURE, answer_of, credentials
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.waiting import wait_for

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


# The cases a running stack can provoke with one tenant (a suspended tenant's is left out).
REPLAYED = {
    name: case
    for name, case in json.loads(FIXTURE.read_text())["errors"].items()
    if case["request"] is not None and case["request"].get("credentials") != "suspended"
}


@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_the_sdks_error_fixture_is_what_the_running_front_door_answers(
    stack: ApiProcess, stack_tenant: dict[str, str], name: str
) -> None:
    """The SDKs' stand-ins answer from sdk/testdata/errors.json; the front door on the local
    cluster (the real API server behind it) answers each of its cases the same."""
    case = REPLAYED[name]
    request = case["request"]
    headers = credentials(
        request.get("credentials", "good"), stack_tenant["key"], stack_tenant["client_id"]
    )
    url = stack.base_url.removesuffix("/v1") + request["path"]
    status, got, body = call(request["method"], url, request.get("body"), headers)
    assert answer_of(status, got, body) == {k: case[k] for k in ("status", "headers", "body")}
