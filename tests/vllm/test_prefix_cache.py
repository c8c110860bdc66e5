"""No tenant's prompt is answered from another tenant's cache: the gateway salts vLLM's prefix
cache with the caller's tenant (``cache_salt``) on every request, both APIs, streams included.

On real vLLM (prefix caching on, as the operator renders it, with the cached tokens reported in
each answer's usage): the same tenant sending a long prompt twice gets its blocks back the
second time, a second tenant sending the very same prompt gets none, and vLLM's own counters
(``vllm:prefix_cache_queries`` / ``vllm:prefix_cache_hits``, in tokens) agree with what the
answers said. The stand-in has no prefix cache, so that half runs on vLLM only; a client's own
``cache_salt`` is refused by the gateway, before any model server, on both.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.waiting import wait_for
from tests.standins.client import Answer
from tests.vllm.conftest import Stack
from tests.vllm.upstreams import MAX_MODEL_LEN

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
BLOCK = 128  # vLLM's KV-cache block on CPU: only whole blocks are cached and found
RECORD = (
    "Discharge summary. The patient was admitted with community acquired pneumonia, treated "
    "with intravenous antibiotics for three days and switched to oral therapy, afebrile for "
    "forty eight hours, saturating well on room air, mobilising independently. "
)


def long_prompt() -> str:
    """About 300 tokens of the tiny model's tokenizer: two whole blocks and some; new each
    time (the unique start), so nothing earlier in the session can have cached it."""
    return f"Case {uuid.uuid4().hex}. " + RECORD * 5


def body(route: str, prompt: str, stream: bool) -> dict[str, Any]:
    text = {"prompt": prompt} if route == COMPLETIONS else {
        "messages": [{"role": "user", "content": prompt}]}  # fmt: skip
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    return {**text, "max_tokens": 1, "temperature": 0, **extra}


def usage(answer: Answer) -> dict[str, Any]:
    assert answer.status == 200, answer.body[:300]
    if answer.headers.get("Content-Type", "").startswith("text/event-stream"):
        return [e for e in answer.events() if isinstance(e, dict) and e.get("usage")][-1]["usage"]  # type: ignore[no-any-return]
    return answer.json()["usage"]  # type: ignore[no-any-return]


def cached(used: dict[str, Any]) -> int:
    """What vLLM says it found in the cache (none when it says nothing)."""
    return int((used.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)


def counter(stack: Stack, name: str) -> float:
    return stack.upstream.metric(f"{name}_total") or stack.upstream.metric(name)


# The stand-in has no prefix cache: this is a claim about vLLM's, so it runs on vLLM only.
@pytest.mark.parametrize(
    "stack", [pytest.param("vllm", marks=pytest.mark.real_vllm)], indirect=True
)
@pytest.mark.parametrize("route", [COMPLETIONS, CHAT])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_tenant_never_gets_a_cache_hit_on_another_tenants_prompt(
    stack: Stack, route: str, stream: bool
) -> None:
    beta = stack.others["beta"]
    queries = counter(stack, "vllm:prefix_cache_queries")
    hits = counter(stack, "vllm:prefix_cache_hits")
    prompt = long_prompt()

    acme_first = usage(stack.post(route, body(route, prompt, stream)))
    acme_again = usage(stack.post(route, body(route, prompt, stream)))
    beta_first = usage(stack.post(route, body(route, prompt, stream), caller=beta))
    beta_again = usage(stack.post(route, body(route, prompt, stream), caller=beta))
    answers = [acme_first, acme_again, beta_first, beta_again]

    tokens = acme_first["prompt_tokens"]
    assert 2 * BLOCK < tokens < MAX_MODEL_LEN and all(u["prompt_tokens"] == tokens for u in answers)
    whole_blocks = (tokens - 1) // BLOCK * BLOCK  # the last token is always computed
    assert cached(acme_first) == 0  # a new prompt
    assert cached(acme_again) == whole_blocks  # the same tenant: its blocks found
    assert cached(beta_first) == 0  # another tenant, the very same text: nothing found
    assert cached(beta_again) == whole_blocks  # its own cache works as well

    # vLLM's own counters: every prompt token was looked up, and the hits are exactly the two
    # repeats' blocks (the counters may lag the answers by a step: wait for the lookups).
    wait_for(
        lambda: counter(stack, "vllm:prefix_cache_queries") - queries >= 4 * tokens,
        timeout=30, interval=0.2, what="vLLM's prefix-cache counters to count the requests",
    )  # fmt: skip
    assert counter(stack, "vllm:prefix_cache_hits") - hits == 2 * whole_blocks


@pytest.mark.parametrize("route", [COMPLETIONS, CHAT])
@pytest.mark.parametrize("salt", ["acme-guess", ""])
def test_a_clients_own_cache_salt_is_refused_before_the_model_and_nothing_billed(
    stack: Stack, route: str, salt: str
) -> None:
    request_id = f"req_{uuid.uuid4().hex}"
    answer = stack.post(route, {**body(route, "hello", False), "cache_salt": salt}, request_id)
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["type"] == "validation_error" and error["message"].startswith("cache_salt: ")
    assert request_id not in stack.ledger()
