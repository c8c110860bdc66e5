"""The front door's OpenAI routes on the running stack (local cluster, operator, front door, the
local data plane's gateways in front of the vLLM stand-in), called the way users call them: the
official ``openai`` packages for Python and JavaScript pointed at the front door with
``base_url`` and a default ``X-Client-ID`` header, and our two SDKs' ``chat``.

The stand-in answers deterministically: a completion repeats the prompt's words, one token per
word, so every text and count below is known in advance.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import openai
import paitient_secure_model as sdk
import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from tests.integration.frontdoor_process import ApiProcess, call, client_trust
from tests.integration.stack_helpers import REPO, make_tenant
from tests.integration.waiting import wait_for
from tests.standins.vllm_protocol import chat_template

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
TENANT = ("paitient.ai/v1alpha1", "Tenant")
CHAT_MODEL = "ZimaBlueAI/HuatuoGPT-o1-8B"
MESSAGES = [{"role": "user", "content": "alpha beta gamma"}]
# The stand-in counts a chat prompt as a model does, through its chat template: the three words
# plus the template's own tokens.
PROMPT = len(chat_template(MESSAGES).split())


def served(name: str, namespace: str, model: str) -> dict[str, Any]:
    """A deployment that becomes Ready and gets a gateway (on the encrypted class)."""
    return {
        "apiVersion": MD[0], "kind": MD[1], "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": model}, "useGpu": True, "gpu": {"count": 1},
                 "storage": {"size": "10Gi", "storageClassName": "encrypted-local"}},
    }  # fmt: skip


def unserved(name: str, namespace: str, model: str) -> dict[str, Any]:
    """A deployment that never serves: it names a class not known to be encrypted."""
    return {
        "apiVersion": MD[0], "kind": MD[1], "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": model}, "useGpu": False,
                 "storage": {"size": "1Gi", "storageClassName": "plain-local"}},
    }  # fmt: skip


def openai_client(stack: ApiProcess, tenant: dict[str, str], **kwargs: Any) -> openai.OpenAI:
    """OpenAI's own SDK, as a user points it at the front door (its TLS CA trusted through the
    HTTP client the SDK takes)."""
    return openai.OpenAI(
        api_key=tenant["key"],
        base_url=stack.base_url,
        default_headers={"X-Client-ID": tenant["client_id"]},
        max_retries=0,
        http_client=openai.DefaultHttpxClient(verify=client_trust() or True),
        **kwargs,
    )


def our_client(stack: ApiProcess, tenant: dict[str, str]) -> sdk.SecureModelClient:
    return sdk.SecureModelClient(
        api_key=tenant["key"], client_id=tenant["client_id"], base_url=stack.base_url, max_retries=0
    )


def tenant_with(
    stack: ApiProcess, kube: Kube, deployment: str, model: str, twins: tuple[str, ...] = ()
) -> dict[str, str]:
    """A new tenant whose ``deployment`` serves ``model``; the ``twins`` serve "org/twin" in
    name only (they never become ready)."""
    tenant = make_tenant(kube)
    ours = our_client(stack, tenant)  # a new key works on its first request
    kube.create(served(deployment, tenant["namespace"], model))
    for twin in twins:
        kube.create(unserved(twin, tenant["namespace"], "org/twin"))
    ours.wait_until_ready(deployment, timeout=120, poll_interval=0.5)  # ready means servable
    return tenant


@pytest.fixture(scope="module")
def clinic(stack: ApiProcess, kube: Kube) -> Iterator[dict[str, str]]:
    """Serves "chat-model"; "twin-a" and "twin-b" share one model name and never serve."""
    tenant = tenant_with(stack, kube, "chat-model", CHAT_MODEL, twins=("twin-a", "twin-b"))
    yield tenant
    admin.delete_tenant(kube, tenant["name"], force=True)


@pytest.fixture(scope="module")
def metered(stack: ApiProcess, kube: Kube) -> Iterator[dict[str, str]]:
    """A tenant of its own whose usage only the tests below make, so it is known exactly."""
    tenant = tenant_with(stack, kube, "meter-model", "org/meter")
    yield tenant
    admin.delete_tenant(kube, tenant["name"], force=True)


def run_node(stack: ApiProcess, tenant: dict[str, str], scenario: str, model: str) -> Any:
    env = {
        **os.environ,
        "PAITIENT_BASE_URL": stack.base_url,
        "PAITIENT_API_KEY": tenant["key"],
        "PAITIENT_CLIENT_ID": tenant["client_id"],
        "OPENAI_RUNNER_MODEL": model,
    }
    done = subprocess.run(
        ["node", str(REPO / "tests/integration/openai_runner.js"), scenario],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- the openai Python package -------------------------------------------------------------------


def test_chat_and_completions_answer_as_openai_objects(
    stack: ApiProcess, clinic: dict[str, str]
) -> None:
    client = openai_client(stack, clinic)
    chat = client.chat.completions.create(model="chat-model", messages=MESSAGES, max_tokens=4)
    assert chat.object == "chat.completion"
    assert chat.choices[0].message.role == "assistant"
    assert chat.choices[0].message.content.split() == ["alpha", "beta", "gamma", "alpha"]
    assert chat.choices[0].finish_reason == "length"  # max_tokens ran out
    assert chat.usage is not None
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (PROMPT, 4)
    assert chat._request_id is not None and chat._request_id.startswith("req_")

    completion = client.completions.create(model="chat-model", prompt="one two three", max_tokens=5)
    assert completion.choices[0].text.split() == ["one", "two", "three", "one", "two"]
    assert completion.usage is not None and completion.usage.total_tokens == 8


def test_a_model_name_served_by_one_deployment_reaches_it(
    stack: ApiProcess, clinic: dict[str, str]
) -> None:
    chat = openai_client(stack, clinic).chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, max_tokens=2
    )
    assert chat.choices[0].message.content.split() == ["alpha", "beta"]


def test_streams_relay_each_event_and_the_usage_chunk_only_when_asked(
    stack: ApiProcess, clinic: dict[str, str]
) -> None:
    client = openai_client(stack, clinic)
    chunks = list(
        client.chat.completions.create(
            model="chat-model", messages=MESSAGES, max_tokens=4, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == ["alpha", "beta", "gamma", "alpha"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert all(c.usage is None for c in chunks)  # not asked for: hidden (but metered)

    with_usage = list(
        client.chat.completions.create(
            model="chat-model",
            messages=MESSAGES,
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = with_usage[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (PROMPT, 4)

    pieces = list(
        client.completions.create(
            model="chat-model", prompt="one two three", max_tokens=5, stream=True
        )
    )
    assert "".join(p.choices[0].text for p in pieces if p.choices).split() == [
        "one", "two", "three", "one", "two"
    ]  # fmt: skip


def test_models_lists_only_the_callers_deployments_that_serve(
    stack: ApiProcess, clinic: dict[str, str], metered: dict[str, str]
) -> None:
    client = openai_client(stack, clinic)
    assert [m.id for m in client.models.list()] == ["chat-model"]  # not the twins, not metered's
    card = client.models.retrieve("chat-model")
    assert (card.id, card.owned_by, card.root) == ("chat-model", "paitient", CHAT_MODEL)  # type: ignore[attr-defined]
    assert [m.id for m in openai_client(stack, metered).models.list()] == ["meter-model"]


def test_a_model_the_caller_cannot_use_is_an_openai_error_naming_the_field(
    stack: ApiProcess, clinic: dict[str, str]
) -> None:
    client = openai_client(stack, clinic)

    def chat(model: str) -> Any:
        return client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=2)

    with pytest.raises(openai.ConflictError) as ambiguous:
        chat("org/twin")
    assert (ambiguous.value.code, ambiguous.value.param) == ("model_ambiguous", "model")
    assert "twin-a, twin-b" in ambiguous.value.message
    for unknown in ("nothing-here", "meter-model"):  # the second is another tenant's
        with pytest.raises(openai.NotFoundError) as missing:
            chat(unknown)
        assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    with pytest.raises(openai.InternalServerError) as not_ready:
        chat("twin-a")
    assert not_ready.value.status_code == 503 and "not ready" in not_ready.value.message
    status, headers, body = call(
        "POST",
        f"{stack.base_url}/chat/completions",
        {"messages": MESSAGES},
        {"Authorization": f"Bearer {clinic['key']}", "X-Client-ID": clinic["client_id"]},
    )
    assert status == 400
    assert body["error"] == {
        "type": "validation_error",
        "message": "'model' must be a non-empty string: the id of one of your deployments",
        "param": "model",
        "code": None,
        "request_id": headers["x-request-id"],
    }


def test_a_bad_key_is_openais_authentication_error_everywhere(
    stack: ApiProcess, clinic: dict[str, str]
) -> None:
    key = clinic["key"]
    wrong = {**clinic, "key": key[:-1] + ("B" if key.endswith("A") else "A")}
    client = openai_client(stack, wrong)
    for attempt in (
        lambda: client.chat.completions.create(model="chat-model", messages=MESSAGES),
        lambda: client.completions.create(model="chat-model", prompt="x"),
        client.models.list,
    ):
        with pytest.raises(openai.AuthenticationError) as info:
            attempt()
        assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
        assert info.value.message.endswith("invalid API key or client ID")
    with pytest.raises(sdk.AuthenticationError):
        our_client(stack, wrong).chat("chat-model", MESSAGES)
    seen = run_node(stack, wrong, "refused", "chat-model")
    assert seen["openai"]["name"] == "AuthenticationError" and seen["openai"]["status"] == 401
    assert seen["openai"]["openaiAuthentication"] and seen["openai"]["code"] == "invalid_api_key"
    assert seen["sdk"]["name"] == "AuthenticationError" and seen["sdk"]["sdkAuthentication"]


def test_the_openai_npm_package_and_our_js_sdk_against_the_front_door(
    stack: ApiProcess, clinic: dict[str, str]
) -> None:
    seen = run_node(stack, clinic, "calls", "chat-model")
    words = ["alpha", "beta", "gamma", "alpha"]
    assert seen["chat"]["content"].split() == words
    assert seen["chat"]["finishReason"] == "length"
    assert seen["chat"]["usage"]["completion_tokens"] == 4
    assert seen["chat"]["requestId"].startswith("req_")
    assert seen["chatStream"]["content"].split() == words
    assert seen["chatStream"]["finishReason"] == ["length"] and seen["chatStream"]["usage"] == 0
    last = seen["chatUsage"]["last"]
    assert last["choices"] == [] and last["usage"]["total_tokens"] == PROMPT + 4
    assert seen["completion"]["text"].split() == ["one", "two", "three", "one", "two"]
    assert seen["completionStream"]["text"].split() == ["one", "two", "three", "one", "two"]
    assert seen["models"] == ["chat-model"]
    sdk_chat = seen["sdkChat"]
    assert sdk_chat["deploymentId"] == "chat-model" and sdk_chat["model"] == CHAT_MODEL
    assert sdk_chat["message"]["content"].split() == words
    assert sdk_chat["usage"] == {
        "promptTokens": PROMPT,
        "completionTokens": 4,
        "totalTokens": PROMPT + 4,
    }
    assert "".join(c.get("content", "") for c in seen["sdkStream"]).split() == words
    assert seen["sdkStream"][-1] == {
        "finishReason": "length",
        "usage": {"promptTokens": PROMPT, "completionTokens": 4, "totalTokens": PROMPT + 4},
    }


def test_our_python_sdk_chats_sync_and_async(stack: ApiProcess, clinic: dict[str, str]) -> None:
    words = ["alpha", "beta", "gamma", "alpha"]
    client = our_client(stack, clinic)
    result = client.chat(deployment_id="chat-model", messages=MESSAGES, max_tokens=4)
    assert result.text.split() == words and result.message.role == "assistant"
    assert result.finish_reason == "length" and result.model == CHAT_MODEL
    assert result.usage == sdk.Usage(
        prompt_tokens=PROMPT, completion_tokens=4, total_tokens=PROMPT + 4
    )
    with client.chat(deployment_id="chat-model", messages=MESSAGES, max_tokens=4, stream=True) as s:
        chunks = list(s)
    assert "".join(c.content for c in chunks).split() == words
    assert chunks[-1].finish_reason == "length" and chunks[-1].usage == result.usage

    async def chat_async() -> tuple[sdk.ChatResult, list[sdk.ChatChunk]]:
        async with sdk.AsyncSecureModelClient(
            api_key=clinic["key"], client_id=clinic["client_id"], base_url=stack.base_url
        ) as aclient:
            answer = await aclient.chat("chat-model", MESSAGES, max_tokens=4)
            stream = await aclient.chat("chat-model", MESSAGES, max_tokens=4, stream=True)
            async with stream:
                return answer, [c async for c in stream]

    answer, async_chunks = asyncio.run(chat_async())
    assert answer.text.split() == words
    assert [c.content for c in async_chunks] == [c.content for c in chunks]


# -- metering and limits, in a tenant of their own ---------------------------------------------------


def test_a_stream_that_did_not_ask_for_usage_is_metered_all_the_same(
    stack: ApiProcess, metered: dict[str, str]
) -> None:
    ours = our_client(stack, metered)
    assert ours.get_subscription().current_usage == 0
    messages = [{"role": "user", "content": "count these four words"}]
    chunks = list(
        openai_client(stack, metered).chat.completions.create(
            model="meter-model",
            messages=messages,
            max_tokens=6,
            stream=True,
        )
    )
    assert all(c.usage is None for c in chunks)
    # The templated prompt + 6 completion tokens: from the gateway's ledger to the Tenant.
    wait_for(
        lambda: ours.get_subscription().current_usage == len(chat_template(messages).split()) + 6,
        timeout=60,
        what="the stream's tokens in the tenant's usage",
    )


def test_a_tenant_over_its_limit_gets_429_with_retry_after_in_every_client(
    stack: ApiProcess, metered: dict[str, str], kube: Kube
) -> None:
    client = openai_client(stack, metered)

    def refused() -> openai.RateLimitError | None:
        try:
            client.chat.completions.create(model="meter-model", messages=MESSAGES, max_tokens=2)
        except openai.RateLimitError as exc:
            return exc
        return None

    kube.patch(*TENANT, metered["name"], {"spec": {"usageLimitOverride": 0}})
    try:
        limited = wait_for(refused, timeout=60, what="the gateway to apply the new limit")
        assert limited.status_code == 429 and limited.code == "rate_limit_exceeded"
        assert int(limited.response.headers["retry-after"]) > 0
        with pytest.raises(sdk.RateLimitError) as ours:
            our_client(stack, metered).chat("meter-model", MESSAGES, max_tokens=2)
        assert ours.value.retry_after is not None and ours.value.retry_after > 0
        seen = run_node(stack, metered, "refused", "meter-model")
        assert seen["openai"]["name"] == "RateLimitError" and seen["openai"]["openaiRateLimit"]
        assert int(seen["openai"]["retryAfter"]) > 0
        assert seen["sdk"]["name"] == "RateLimitError" and seen["sdk"]["sdkRateLimit"]
        assert seen["sdk"]["retryAfter"] > 0
    finally:
        kube.patch(*TENANT, metered["name"], {"spec": {"usageLimitOverride": None}})
