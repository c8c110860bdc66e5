"""chat(): the OpenAI-compatible chat route, its typed results, its stream, and the same errors
and retries as generate."""

from __future__ import annotations

import json

import httpx
import pytest

from paitient_secure_model import (
    APIConnectionError,
    AuthenticationError,
    ChatChunk,
    ChatMessage,
    ChatResult,
    ChatStream,
    NotFoundError,
    PaitientError,
    RateLimitError,
    SecureModelClient,
    ServiceError,
    Usage,
    ValidationError,
)

from .conftest import Sleeps, make_async_client, make_client, run
from .fakeserver import FakeServer, service_error, sse

MESSAGES = [
    {"role": "system", "content": "You are a careful clinical assistant."},
    {"role": "user", "content": "What is PHI?"},
]
USAGE = Usage(prompt_tokens=9, completion_tokens=3, total_tokens=12)


def chunk(delta: dict[str, str] | None, finish: str | None = None, **extra: object) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"object": "chat.completion.chunk", "choices": choices, **extra}


def streamed(*events: object):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=sse(*events), headers={"content-type": "text/event-stream"}
        )

    return handler


def test_chat_sends_the_deployment_as_model_and_parses_the_answer(
    client: SecureModelClient, server: FakeServer
) -> None:
    result = client.chat("deployment-123", MESSAGES, max_tokens=64, temperature=0.2, seed=7)
    request = server.requests[-1]
    assert (request.method, request.url.path) == ("POST", "/v1/chat/completions")
    assert json.loads(request.content) == {
        "model": "deployment-123",
        "messages": MESSAGES,
        "max_tokens": 64,
        "temperature": 0.2,
        "stream": False,
        "seed": 7,
    }
    assert isinstance(result, ChatResult)
    assert result.message == ChatMessage("assistant", "Protected health information.")
    assert result.text == "Protected health information."
    assert (result.finish_reason, result.usage) == ("stop", USAGE)
    assert (result.id, result.deployment_id) == ("chatcmpl-1", "deployment-123")
    assert result.model == "ZimaBlueAI/HuatuoGPT-o1-8B"
    assert result.raw["object"] == "chat.completion"


def test_unset_options_are_left_to_the_server(
    client: SecureModelClient, server: FakeServer
) -> None:
    client.chat(deployment_id="deployment-123", messages=MESSAGES)
    body = json.loads(server.requests[-1].content)
    assert set(body) == {"model", "messages", "stream"}


def test_a_chat_stream_gives_text_then_one_final_chunk_with_the_usage(
    client: SecureModelClient, server: FakeServer
) -> None:
    with client.chat("deployment-123", MESSAGES, stream=True) as stream:
        assert isinstance(stream, ChatStream)
        chunks = list(stream)
    body = json.loads(server.requests[-1].content)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert server.requests[-1].headers["accept"] == "text/event-stream"
    assert [c.content for c in chunks] == ["Protected", " health", " information.", ""]
    final = chunks[-1]
    assert final.is_final and (final.finish_reason, final.usage) == ("stop", USAGE)
    assert not any(c.is_final or c.usage for c in chunks[:-1])


def test_a_finish_reason_that_comes_with_text_is_split_from_it() -> None:
    usage = {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}
    client = make_client(
        streamed(
            chunk({"content": "a "}),
            chunk({"content": "b"}, finish="length"),
            chunk(None, usage=usage),
            "[DONE]",
        )
    )
    chunks = list(client.chat_stream("deployment-123", MESSAGES))
    assert chunks == [
        ChatChunk(content="a "),
        ChatChunk(content="b"),
        ChatChunk(finish_reason="length", usage=Usage(2, 2, 4)),
    ]


def test_a_stream_without_the_usage_chunk_still_ends_with_its_finish_reason() -> None:
    client = make_client(streamed(chunk({"content": "x"}), chunk({}, finish="stop")))
    chunks = list(client.chat_stream("deployment-123", MESSAGES))
    assert [(c.content, c.finish_reason, c.usage) for c in chunks] == [
        ("x", None, None),
        ("", "stop", None),
    ]


def test_a_stream_cut_before_its_finish_raises_a_connection_error() -> None:
    client = make_client(streamed(chunk({"content": "x"})))
    with pytest.raises(APIConnectionError, match="ended before"):
        list(client.chat_stream("deployment-123", MESSAGES))


def test_an_error_event_mid_stream_raises_its_class() -> None:
    failure = {"error": {"type": "service_error", "message": "the model server failed"}}
    client = make_client(streamed(chunk({"content": "x"}), failure))
    stream = client.chat_stream("deployment-123", MESSAGES)
    assert next(iter(stream)).content == "x"
    with pytest.raises(ServiceError, match="the model server failed"):
        next(iter(stream))


@pytest.mark.parametrize(
    ("response", "cls"),
    [
        (service_error("authentication"), AuthenticationError),
        (service_error("chat_model_unknown"), NotFoundError),
        (service_error("chat_messages_empty"), ValidationError),
    ],
)
def test_chat_raises_the_same_errors_as_generate(response: httpx.Response, cls: type) -> None:
    client = make_client(lambda request: response)
    with pytest.raises(cls) as info:
        client.chat("deployment-123", MESSAGES)
    assert info.value.status_code == response.status_code


def test_chat_is_retried_like_generate_with_one_idempotency_key(sleeps: Sleeps) -> None:
    server = FakeServer()
    # The front door's recorded answers: the limiter's 429 (60 s), a loading model's 503 (5 s).
    answers = iter([service_error("rate_limited"), service_error("model_loading")])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        first = next(answers, None)
        return first if first is not None else server.handle(request)

    client = make_client(handler, sleeps)
    assert client.chat("deployment-123", MESSAGES).text == "Protected health information."
    assert sleeps == [60.0, 5.0]
    assert len({r.headers["idempotency-key"] for r in seen}) == 1 and len(seen) == 3


def test_a_429_after_the_last_retry_is_a_rate_limit_error_with_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return service_error("usage_limit_reached")  # until the period ends: an hour

    client = make_client(handler, max_retries=0)
    with pytest.raises(RateLimitError, match="usage limit for the period reached") as info:
        client.chat("deployment-123", MESSAGES)
    assert info.value.retry_after == 3600.0


@pytest.mark.parametrize("messages", [[], "hello", None])
def test_messages_must_be_a_non_empty_list(client: SecureModelClient, messages: object) -> None:
    with pytest.raises(ValueError, match="messages"):
        client.chat("deployment-123", messages)  # type: ignore[arg-type]


def test_an_answer_without_choices_is_an_invalid_response() -> None:
    client = make_client(lambda request: httpx.Response(200, json={"id": "x", "choices": []}))
    with pytest.raises(PaitientError) as info:
        client.chat("deployment-123", MESSAGES)
    assert info.value.type == "invalid_response"


def test_the_async_client_chats_and_streams(server: FakeServer) -> None:
    async def main() -> tuple[ChatResult, list[ChatChunk]]:
        async with make_async_client(server.handle) as client:
            result = await client.chat("deployment-123", MESSAGES, max_tokens=8)
            async with await client.chat("deployment-123", MESSAGES, stream=True) as stream:
                chunks = [c async for c in stream]
            return result, chunks

    result, chunks = run(main())
    assert result.text == "Protected health information." and result.usage == USAGE
    assert "".join(c.content for c in chunks) == result.text
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage == USAGE
