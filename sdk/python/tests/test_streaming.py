"""SSE decoding and generation streams: chunks, the final chunk, errors mid-stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from paitient_secure_model import (
    APIConnectionError,
    GenerationChunk,
    GenerationStream,
    RateLimitError,
    SecureModelClient,
    ServiceError,
    Usage,
)
from paitient_secure_model._sse import ServerSentEvent, SSEDecoder

from .conftest import Sleeps, make_client
from .fakeserver import FakeServer, service_error, sse

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def stream_of(body: bytes | Iterator[bytes]):
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return handler, calls


def decode(text: str) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [decoder.decode(line) for line in text.split("\n")]
    return [e for e in [*events, decoder.flush()] if e is not None]


def test_sse_decoder() -> None:
    text = ': keep-alive\n\nevent: delta\nid: 7\ndata: {"a":\ndata:1}\n\ndata:no-space\n\n\n'
    assert decode(text) == [
        ServerSentEvent(data='{"a":\n1}', event="delta", id="7"),
        ServerSentEvent(data="no-space", event="message", id="7"),
    ]
    assert decode("data: tail-without-blank-line") == [ServerSentEvent("tail-without-blank-line")]
    assert decode("event: lonely\n\n") == []


def test_generate_stream(client: SecureModelClient, server: FakeServer) -> None:
    with client.generate_stream("deployment-123", "Explain HIPAA", max_tokens=50) as stream:
        chunks = list(stream)
    request = server.requests[-1]
    assert request.headers["accept"] == "text/event-stream"
    assert json.loads(request.content)["stream"] is True
    assert "".join(c.text for c in chunks) == "HIPAA compliance protects patients."
    assert [c.is_final for c in chunks] == [False, False, False, False, True]
    final = chunks[-1]
    assert final.text == ""
    assert final.finish_reason == "stop"
    assert final.usage == Usage(12, 4, 16)
    assert stream.request_id == "req-fake"
    assert stream.response.is_closed


def test_generate_with_stream_true(client: SecureModelClient) -> None:
    stream = client.generate("deployment-123", "Hi", stream=True)
    assert isinstance(stream, GenerationStream)
    texts = [chunk.text for chunk in stream]
    assert texts[-1] == ""
    assert "".join(texts) == "HIPAA compliance protects patients."


def test_error_event_mid_stream() -> None:
    body = sse(
        {"text": "Hel"},
        {"error": {"type": "rate_limit_error", "message": "usage cap reached", "request_id": "r9"}},
    )
    handler, _ = stream_of(body)
    stream = make_client(handler).generate_stream("d", "Hi")
    received: list[GenerationChunk] = []
    with pytest.raises(RateLimitError, match="usage cap reached") as info:
        received.extend(stream)
    assert [c.text for c in received] == ["Hel"]
    assert info.value.request_id == "r9"
    assert info.value.status_code is None
    assert stream.response.is_closed


def test_untyped_error_event_is_a_service_error() -> None:
    handler, _ = stream_of(sse({"error": {"message": "model crashed"}}))
    with pytest.raises(ServiceError, match="model crashed"):
        list(make_client(handler).generate_stream("d", "Hi"))


def test_stream_ending_without_final_chunk_is_a_connection_error() -> None:
    handler, _ = stream_of(sse({"text": "Hel"}))
    with pytest.raises(APIConnectionError, match="ended before"):
        list(make_client(handler).generate_stream("d", "Hi"))


def test_final_chunk_without_done_is_accepted() -> None:
    handler, _ = stream_of(sse({"text": "a"}, {"finish_reason": "length", "usage": USAGE}))
    chunks = list(make_client(handler).generate_stream("d", "Hi"))
    assert chunks[-1].finish_reason == "length"


def test_nothing_after_done_is_read() -> None:
    handler, _ = stream_of(sse({"text": "a"}, "[DONE]", {"text": "ignored"}))
    assert [c.text for c in make_client(handler).generate_stream("d", "Hi")] == ["a"]


def test_status_errors_before_the_stream_are_retried_and_raised(sleeps: Sleeps) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return service_error("model_loading")
        return httpx.Response(200, content=sse({"text": "ok"}, {"finish_reason": "stop"}, "[DONE]"))

    chunks = list(make_client(handler, sleeps).generate_stream("d", "Hi"))
    assert [c.text for c in chunks] == ["ok", ""]
    assert len(calls) == 2

    with pytest.raises(RateLimitError):
        make_client(lambda r: service_error("rate_limited"), max_retries=0).generate(
            "d", "Hi", stream=True
        )


def test_a_stream_broken_after_bytes_arrived_is_not_retried(sleeps: Sleeps) -> None:
    def body() -> Iterator[bytes]:
        yield sse({"text": "partial"})
        raise httpx.ReadError("connection reset")

    handler, calls = stream_of(body())
    stream = make_client(handler, sleeps).generate_stream("d", "Hi")
    received: list[str] = []
    with pytest.raises(APIConnectionError, match="connection reset"):
        received.extend(c.text for c in stream)
    assert received == ["partial"]
    assert len(calls) == 1
    assert sleeps == []


def test_closing_early_releases_the_connection(client: SecureModelClient) -> None:
    stream = client.generate_stream("deployment-123", "Hi")
    assert next(stream).text == "HIPAA"
    stream.close()
    assert stream.response.is_closed
