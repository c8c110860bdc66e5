"""The gateway's contract with vLLM, run against real vLLM and against the stand-in alike.

Every test goes through the gateway and asserts relations, never the model's words: the ledger
holds exactly the usage vLLM reported, a refusal is vLLM's own, a stream's layout is vLLM's.
The same assertions passing for both model servers is what makes the stand-in honest.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from paitient_gateway.upstream import public_message
from tests.contract.service_errors import FIXTURE
from tests.integration.waiting import wait_for
from tests.prerequisites import missing
from tests.standins.client import Answer, run, sync_call
from tests.vllm.conftest import Stack
from tests.vllm.upstreams import MAX_MODEL_LEN

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
PROMPT = "The patient reports a mild headache and asks about rest"


@pytest.fixture(autouse=True)
def upstream_running(stack: Stack) -> Iterator[None]:
    """A test that killed the model server leaves it restarted for the next."""
    stack.ensure_upstream()
    yield
    if stack.upstream.alive():
        stack.upstream.pace(0)


def rid() -> str:
    return f"req_{uuid.uuid4().hex}"


def chat_body(text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def usage_of(answer: Answer) -> dict[str, int]:
    if answer.headers.get("Content-Type", "").startswith("text/event-stream"):
        final = [e for e in answer.events() if isinstance(e, dict) and e.get("usage")]
        return final[-1]["usage"]  # type: ignore[no-any-return]
    return answer.json()["usage"]  # type: ignore[no-any-return]


def assert_billed_exactly(stack: Stack, request_id: str, usage: dict[str, int]) -> None:
    record = stack.ledger()[request_id]
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def assert_finish(choice: dict[str, Any], tokens: int, max_tokens: int) -> None:
    """``length`` exactly when max_tokens ran out; otherwise the model stopped (EOS)."""
    assert choice["finish_reason"] == ("length" if tokens == max_tokens else "stop")


# -- completions and chat, JSON ------------------------------------------------------------------


@pytest.mark.parametrize("route", [COMPLETIONS, CHAT])
def test_a_json_completion_is_billed_exactly_what_vllm_reported(stack: Stack, route: str) -> None:
    body = {"prompt": PROMPT} if route == COMPLETIONS else chat_body()
    request_id = rid()
    answer = stack.post(route, {**body, "max_tokens": 8, "temperature": 0}, request_id)
    assert answer.status == 200, answer.body
    data = answer.json()
    assert data["object"] == ("text_completion" if route == COMPLETIONS else "chat.completion")
    assert data["model"] == "tiny"
    [choice] = data["choices"]
    assert choice["index"] == 0 and "stop_reason" in choice
    text = choice["text"] if route == COMPLETIONS else choice["message"]["content"]
    assert isinstance(text, str)
    usage = data["usage"]
    assert 1 <= usage["completion_tokens"] <= 8
    assert_finish(choice, usage["completion_tokens"], 8)
    assert_billed_exactly(stack, request_id, usage)


def test_chat_prompt_tokens_include_the_chat_template(stack: Stack) -> None:
    plain = stack.post(COMPLETIONS, {"prompt": PROMPT, "max_tokens": 1})
    chat = stack.post(CHAT, chat_body(max_tokens=1))
    assert chat.json()["usage"]["prompt_tokens"] > plain.json()["usage"]["prompt_tokens"]


# -- streams -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [COMPLETIONS, CHAT])
def test_a_stream_ends_with_the_usage_chunk_and_is_billed_it(stack: Stack, route: str) -> None:
    body = {"prompt": PROMPT} if route == COMPLETIONS else chat_body()
    request_id = rid()
    options = {"stream": True, "stream_options": {"include_usage": True}}
    answer = stack.post(route, {**body, "max_tokens": 6, "temperature": 0, **options}, request_id)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    events = answer.events()
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] >= 1
    content = events[:-2]
    assert content and all(len(e["choices"]) == 1 and "usage" not in e for e in content)
    finishes = [e["choices"][0]["finish_reason"] for e in content]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert_billed_exactly(stack, request_id, usage_chunk["usage"])


def test_a_stream_without_usage_asked_is_billed_what_vllm_counted(stack: Stack) -> None:
    body = {"prompt": PROMPT, "max_tokens": 6, "temperature": 0, "stream": True}
    silent_id, counted_id = rid(), rid()
    silent = stack.post(COMPLETIONS, body, silent_id)
    assert all("usage" not in e for e in silent.events()[:-1])
    counted = stack.post(
        COMPLETIONS, {**body, "stream_options": {"include_usage": True}}, counted_id
    )
    # Greedy decoding: the same request twice is the same tokens, so the same usage.
    assert_billed_exactly(stack, silent_id, usage_of(counted))
    assert_billed_exactly(stack, counted_id, usage_of(counted))


# -- n > 1 and stop ------------------------------------------------------------------------------


def test_n_choices_are_all_returned_and_all_billed(stack: Stack) -> None:
    request_id = rid()
    answer = stack.post(
        COMPLETIONS, {"prompt": PROMPT, "max_tokens": 5, "n": 3, "seed": 7}, request_id
    )
    assert answer.status == 200, answer.body
    data = answer.json()
    assert sorted(c["index"] for c in data["choices"]) == [0, 1, 2]
    assert data["usage"]["completion_tokens"] <= 15
    assert_billed_exactly(stack, request_id, data["usage"])


def test_n_choices_stream_each_to_its_finish(stack: Stack) -> None:
    request_id = rid()
    options = {"stream": True, "stream_options": {"include_usage": True}}
    answer = stack.post(CHAT, chat_body(max_tokens=4, n=2, seed=7, **options), request_id)
    events = answer.events()
    finished = {
        e["choices"][0]["index"]
        for e in events[:-2]
        if e["choices"] and e["choices"][0]["finish_reason"] is not None
    }
    assert finished == {0, 1}
    assert_billed_exactly(stack, request_id, events[-2]["usage"])


def test_n_above_one_with_greedy_sampling_is_vllms_400(stack: Stack) -> None:
    assert_vllms_refusal(stack, COMPLETIONS, {"prompt": PROMPT, "n": 2, "temperature": 0})


def test_a_stop_string_ends_the_text_before_it_with_its_stop_reason(stack: Stack) -> None:
    free = stack.post(COMPLETIONS, {"prompt": PROMPT, "max_tokens": 12, "temperature": 0})
    text = free.json()["choices"][0]["text"]
    # Two visible characters from the second half: whatever the model wrote, vLLM ends the text
    # at the first place they occur.
    pairs = [text[i : i + 2] for i in range(len(text) // 2, len(text) - 1)]
    visible = [p for p in pairs if not any(c.isspace() or c == "\ufffd" for c in p)]
    assert visible, f"nothing to stop at in {text!r}"
    stop = visible[0]
    request_id = rid()
    body = {"prompt": PROMPT, "max_tokens": 12, "temperature": 0, "stop": [stop]}
    answer = stack.post(COMPLETIONS, body, request_id)
    [choice] = answer.json()["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] == stop
    assert choice["text"] == text[: text.index(stop)]
    assert_billed_exactly(stack, request_id, answer.json()["usage"])


# -- refusals ------------------------------------------------------------------------------------


def assert_vllms_refusal(stack: Stack, route: str, body: dict[str, Any]) -> Answer:
    """vLLM refuses the request with its error shape; the gateway passes it on as a
    validation_error in vLLM's words (minus quoted input), and bills nothing."""
    direct = stack.direct(route, body)
    assert direct.status == 400, direct.body
    error = direct.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["code"] == 400
    request_id = rid()
    answer = stack.post(route, body, request_id)
    assert answer.status == 400, answer.body
    ours = answer.json()["error"]
    assert ours["type"] == "validation_error"
    assert ours["message"] == public_message(error["message"])
    assert ours["request_id"] == request_id
    assert request_id not in stack.ledger()
    return answer


REFUSED = [
    pytest.param(COMPLETIONS, {"prompt": "hi", "max_tokens": MAX_MODEL_LEN + 1}, id="max-tokens-over-context"),
    pytest.param(CHAT, chat_body(max_tokens=MAX_MODEL_LEN + 1), id="chat-max-tokens-over-context"),
    pytest.param(COMPLETIONS, {"prompt": "hi", "max_tokens": "many"}, id="max-tokens-not-a-number"),
    pytest.param(COMPLETIONS, {"prompt": "hi", "max_tokens": 0}, id="max-tokens-zero"),
    pytest.param(COMPLETIONS, {"prompt": "hi", "max_tokens": 2.5}, id="max-tokens-fraction"),
    pytest.param(CHAT, {"messages": []}, id="empty-messages"),
    pytest.param(CHAT, {"messages": "a secret prompt"}, id="messages-not-a-list"),
    pytest.param(COMPLETIONS, {"prompt": ""}, id="empty-prompt"),
    pytest.param(COMPLETIONS, {}, id="no-prompt"),
    pytest.param(CHAT, chat_body(stream_options={"include_usage": True}), id="stream-options-without-stream"),
    pytest.param(COMPLETIONS, {"prompt": "hi", "temperature": -1}, id="negative-temperature"),
    pytest.param(COMPLETIONS, {"prompt": "hi", "stream": "perhaps"}, id="stream-not-a-boolean"),
    pytest.param(COMPLETIONS, {"prompt": "hi", "n": 0}, id="n-zero"),
]  # fmt: skip


@pytest.mark.parametrize(("route", "body"), REFUSED)
def test_every_400_vllm_returns_is_a_validation_error_in_its_words(
    stack: Stack, route: str, body: dict[str, Any]
) -> None:
    answer = assert_vllms_refusal(stack, route, body)
    assert "secret" not in answer.body.decode()


def test_the_sdks_recorded_empty_conversation_is_vllms_own_refusal(stack: Stack) -> None:
    """sdk/testdata/errors.json's ``chat_messages_empty`` is recorded through the stand-in (a
    unit test keeps the file in sync with it); these must be vLLM's own words, so the gateway
    in front of real vLLM answers exactly what the SDKs' stand-ins answer."""
    case = json.loads(FIXTURE.read_text())["errors"]["chat_messages_empty"]
    answer = stack.post(CHAT, {"messages": []})
    assert answer.status == case["status"]
    error = answer.json()["error"]
    recorded = case["body"]["error"]
    assert (error["type"], error["message"]) == (recorded["type"], recorded["message"])


def test_a_prompt_longer_than_the_context_is_refused_by_vllm(stack: Stack) -> None:
    prompt = " ".join(["hello"] * (MAX_MODEL_LEN + 8))
    answer = assert_vllms_refusal(stack, COMPLETIONS, {"prompt": prompt, "max_tokens": 4})
    assert f"maximum context length is {MAX_MODEL_LEN}" in answer.json()["error"]["message"]


def test_a_body_the_gateway_cannot_read_is_refused_by_the_gateway(stack: Stack) -> None:
    answer = sync_call(
        "POST", stack.url(COMPLETIONS), raw=b"{not json", headers=stack.caller.headers()
    )
    assert answer.status == 400 and answer.json()["error"]["type"] == "validation_error"


def test_without_max_tokens_the_gateways_default_fits_the_context(stack: Stack) -> None:
    # The gateway's default (4096) is above this model's 512: it learnt the context from
    # /v1/models and caps its default, or vLLM would answer 400 to every such request.
    request_id = rid()
    answer = stack.post(CHAT, chat_body(temperature=0, ignore_eos=True), request_id)
    assert answer.status == 200, answer.body
    usage = answer.json()["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == MAX_MODEL_LEN
    assert answer.json()["choices"][0]["finish_reason"] == "length"
    assert_billed_exactly(stack, request_id, usage)


# -- a client that leaves, a model server that dies, one that is slow to start -------------------


async def read_then_leave(stack: Stack, request_id: str, body: dict[str, Any], chunks: int) -> int:
    """Read ``chunks`` content events of a stream, then drop the connection; events seen."""
    seen = 0
    headers = {**stack.caller.headers(), "x-request-id": request_id}
    async with (
        aiohttp.ClientSession() as session,
        session.post(stack.url(COMPLETIONS), json=body, headers=headers) as response,
    ):
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: {"):
                seen += 1
                if seen >= chunks:
                    break
    return seen


LONG = {"prompt": PROMPT, "max_tokens": 400, "ignore_eos": True, "stream": True}


# As long as the context allows (the prompt is a few dozen tokens at most): the longest the
# model server can be kept busy, so a client's leaving meets a running request.
ABANDONED = {**LONG, "max_tokens": MAX_MODEL_LEN - 64}


def test_a_client_leaving_mid_stream_is_billed_what_was_generated_and_vllm_stops(
    stack: Stack,
) -> None:
    """The client reads the first event and leaves. Nothing here depends on how fast the
    machine is: vLLM's own count of finished requests says whether the request ran to its end
    (then nothing was left to stop, and the test cannot judge: it says so) or was stopped."""
    stack.upstream.pace(100)  # the stand-in at about real vLLM's speed on this machine
    generated = stack.upstream.metric("vllm:generation_tokens_total")
    finished = {r: stack.upstream.metric("vllm:request_success_total", finished_reason=r)
                for r in ("length", "stop")}  # fmt: skip
    request_id = rid()
    seen = run(read_then_leave(stack, request_id, ABANDONED, chunks=1))
    # vLLM counts no client abort in its metrics, but nothing runs any more, no request of
    # this test finished, and it generated fewer tokens than asked: it stopped when the gateway
    # dropped the connection.
    wait_for(
        lambda: stack.upstream.metric("vllm:num_requests_running") == 0,
        timeout=30,
        what="the model server to stop the abandoned request",
    )
    made = stack.upstream.metric("vllm:generation_tokens_total") - generated
    record = wait_for(lambda: stack.ledger().get(request_id), timeout=10, what="the ledger")
    assert (
        seen <= record["completion_tokens"] <= made
    )  # billed what was made, at least what was seen
    assert record["prompt_tokens"] > 0
    ran_to_the_end = any(
        stack.upstream.metric("vllm:request_success_total", finished_reason=r) > n
        for r, n in finished.items()
    )
    if ran_to_the_end:  # a developer's skip; under CI and make test the unproved claim fails
        missing(
            f"the model server finished all {ABANDONED['max_tokens']} tokens before the "
            "client's leaving reached it: there was nothing left to stop"
        )
    assert made < ABANDONED["max_tokens"]


def test_while_the_model_server_loads_readiness_is_false_and_clients_get_a_503(
    stack: Stack,
) -> None:
    seen = stack.startup
    before = [status for up, status in seen.readiness if not up]
    assert before and set(before) == {503}  # the kubelet keeps the pod out of its Service
    assert seen.readiness[-1] == (True, 200)
    for answer in seen.requests:  # anything that came anyway was told to come back
        assert answer.status == 503
        assert answer.json()["error"]["type"] == "service_error"
        assert "Retry-After" in answer.headers


def test_a_model_server_killed_mid_request_is_a_502_and_the_ledger_stays_consistent(
    stack: Stack,
) -> None:
    stack.upstream.pace(100)
    stream_id, whole_id = rid(), rid()

    async def both_running() -> None:
        # The JSON request must be inside the model server when it dies, not arrive after.
        for _ in range(200):
            running = await asyncio.to_thread(stack.upstream.metric, "vllm:num_requests_running")
            if running >= 2:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the two requests never ran together")

    async def scenario() -> tuple[list[Any], Answer]:
        headers = {**stack.caller.headers(), "x-request-id": whole_id}
        whole_body = {**LONG, "stream": False}
        async with aiohttp.ClientSession() as session:
            whole = asyncio.create_task(
                session.post(stack.url(COMPLETIONS), json=whole_body, headers=headers)
            )
            events: list[Any] = []
            stream_headers = {**stack.caller.headers(), "x-request-id": stream_id}
            async with session.post(
                stack.url(COMPLETIONS), json=LONG, headers=stream_headers
            ) as response:
                async for line in response.content:
                    if line.startswith(b"data: "):
                        events.append(line[6:].strip())
                        if len(events) == 3:
                            await both_running()
                            stack.upstream.kill()
            whole_response = await whole
            body = await whole_response.read()
            return events, Answer(whole_response.status, whole_response.headers, body)  # type: ignore[arg-type]

    stack.upstream.arm_kill()
    try:
        events, whole = run(scenario())
        _check_the_cut(stack, events, whole, stream_id, whole_id)
    finally:
        stack.restart_upstream()  # the model server is the session's: leave it serving


def _check_the_cut(
    stack: Stack, events: list[Any], whole: Answer, stream_id: str, whole_id: str
) -> None:
    last = json.loads(events[-1])
    assert last["error"]["type"] == "service_error"  # headers had gone: the error ends the stream
    assert set(last["error"]) == {"type", "message", "request_id"}
    assert whole.status == 502 and whole.json()["error"]["type"] == "service_error"
    ledger = stack.ledger()
    assert whole_id not in ledger  # vLLM reported no usage for it: nothing to bill
    assert 3 <= ledger[stream_id]["completion_tokens"] < 400  # billed what was streamed
    after = stack.post(COMPLETIONS, {"prompt": "hi", "max_tokens": 1})
    assert after.status == 503, after.body  # nothing listens now: not ready, come back
    assert after.json()["error"]["type"] == "service_error"
    assert int(after.headers["Retry-After"]) >= 1
