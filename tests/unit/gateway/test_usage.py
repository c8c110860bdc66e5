"""Request rewriting and usage in streamed and whole responses."""

from __future__ import annotations

import json

import pytest

from paitient_common.errors import RequestValidationError
from paitient_gateway.usage import (
    CHAT_COMPLETIONS,
    COMPLETIONS,
    StreamMeter,
    Usage,
    prepare_request,
    usage_from,
)


def chunk(choices: list[object], usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, object] = {"id": "c", "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def u(p: int, c: int) -> dict[str, int]:
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def test_the_model_is_forced_and_streams_always_ask_for_usage() -> None:
    raw = json.dumps(
        {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    ).encode()
    prepared = prepare_request(CHAT_COMPLETIONS, raw, "served", 256)
    body = json.loads(prepared.body)
    assert body["model"] == "served"
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert body["max_tokens"] == 256
    assert prepared.stream and not prepared.client_include_usage
    assert prepared.reserve == prepared.prompt_estimate + 256


def test_the_clients_own_max_tokens_and_n_bound_the_reservation() -> None:
    raw = json.dumps({"prompt": "one two three", "max_tokens": 10, "n": 2}).encode()
    prepared = prepare_request(COMPLETIONS, raw, "served", 256)
    assert prepared.max_completion == 20
    assert json.loads(prepared.body)["max_tokens"] == 10
    assert "stream_options" not in json.loads(prepared.body)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"n": 10000}, "n"), ({"n": "17"}, "n"), ({"best_of": 17, "n": 1}, "best_of")],
)
def test_more_choices_than_the_deployment_serves_is_a_422(
    body: dict[str, object], field: str
) -> None:
    raw = json.dumps({"prompt": "hi", "max_tokens": 1, **body}).encode()
    with pytest.raises(RequestValidationError) as refused:
        prepare_request(COMPLETIONS, raw, "served", 16, max_choices=16)
    assert refused.value.status == 422
    assert refused.value.message.startswith(f"{field} is {int(body[field])}: ")  # type: ignore[call-overload]
    assert (
        "at most 16 completions per request (spec.rateLimits.maxChoices)" in refused.value.message
    )


def test_the_cap_on_choices_is_the_deployments_and_reserves_what_it_admits() -> None:
    at_cap = json.dumps({"prompt": "hi", "max_tokens": 2, "n": 4, "best_of": 4}).encode()
    assert prepare_request(COMPLETIONS, at_cap, "served", 16, max_choices=4).max_completion == 8
    with pytest.raises(RequestValidationError):
        prepare_request(COMPLETIONS, at_cap, "served", 16, max_choices=3)
    # Unset: the default (16); what vLLM cannot read as a count is vLLM's to refuse.
    assert prepare_request(COMPLETIONS, json.dumps({"prompt": "x", "n": 16}).encode(), "s", 1)
    for unreadable in ("many", 0, -5):
        raw = json.dumps({"prompt": "x", "n": unreadable}).encode()
        assert prepare_request(COMPLETIONS, raw, "served", 1).max_completion == 1


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'"prompt"'])
def test_only_a_body_that_is_no_json_object_is_refused_here(raw: bytes) -> None:
    with pytest.raises(RequestValidationError):
        prepare_request(COMPLETIONS, raw, "served", 16)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": ""},
        {"prompt": "x", "max_tokens": -1},
        {"prompt": "x", "max_tokens": "abc"},
        {"prompt": "x", "max_tokens": 5.5},
        {"prompt": "x", "n": [1]},
        {"prompt": "x", "stream": "maybe"},
        {"prompt": "x", "stream_options": {"include_usage": True}},  # without stream
        {"prompt": "x", "stream": True, "stream_options": "all"},
        {"messages": []},
        {"messages": "hi"},
    ],
)
def test_what_vllm_must_judge_is_forwarded_as_sent(body: dict[str, object]) -> None:
    route = CHAT_COMPLETIONS if "messages" in body else COMPLETIONS
    prepared = prepare_request(route, json.dumps(body).encode(), "served", 16)
    forwarded = json.loads(prepared.body)
    assert forwarded.pop("model") == "served"
    if "max_tokens" not in body:
        assert forwarded.pop("max_tokens") == 16
    assert forwarded == body
    assert prepared.max_completion == 16  # what vLLM cannot read reserves the default


def test_fields_are_read_as_vllms_pydantic_models_read_them() -> None:
    raw = json.dumps({"prompt": "x", "max_tokens": "5", "n": "2", "stream": "yes"}).encode()
    prepared = prepare_request(COMPLETIONS, raw, "served", 16)
    assert prepared.stream and prepared.max_completion == 10
    body = json.loads(prepared.body)
    assert body["stream"] is True  # what vLLM will do, written out: the gateway meters a stream
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}


def test_the_default_max_tokens_never_exceeds_the_context() -> None:
    raw = json.dumps({"prompt": "x"}).encode()
    prepared = prepare_request(COMPLETIONS, raw, "served", 4096, max_model_len=512)
    assert json.loads(prepared.body)["max_tokens"] == 512
    assert prepared.max_completion == 512
    unknown = prepare_request(COMPLETIONS, raw, "served", 4096)
    assert json.loads(unknown.body)["max_tokens"] == 4096


def test_a_clients_max_tokens_above_the_context_is_vllms_to_refuse() -> None:
    raw = json.dumps({"prompt": "x", "max_tokens": 9999}).encode()
    prepared = prepare_request(COMPLETIONS, raw, "served", 4096, max_model_len=512)
    assert json.loads(prepared.body)["max_tokens"] == 9999
    assert prepared.max_completion == 512  # vLLM generates no more, whatever was asked


def test_per_choice_usage_adds_up_until_the_usage_chunk() -> None:
    meter = StreamMeter(include_usage=False, continuous_usage=False)
    meter.feed(chunk([{"index": 0, "text": "a"}], u(4, 1)))
    meter.feed(chunk([{"index": 1, "text": "b"}], u(4, 1)))
    meter.feed(chunk([{"index": 0, "text": "c"}], u(4, 2)))
    assert meter.usage == Usage(4, 3)
    meter.feed(chunk([], u(4, 5)))
    assert meter.usage == Usage(4, 5) and meter.final


def test_usage_fields_the_client_did_not_ask_for_are_stripped() -> None:
    meter = StreamMeter(include_usage=False, continuous_usage=False)
    out = meter.feed(chunk([{"text": "a"}], u(3, 1)) + chunk([{"text": "b"}], u(3, 2)))
    assert all(b"usage" not in o for o in out) and len(out) == 2
    assert meter.usage == Usage(3, 2) and not meter.final
    assert meter.feed(chunk([], u(3, 2))) == []  # the usage-only chunk
    assert meter.final and not meter.done
    assert meter.feed(b"data: [DONE]\n\n") == [b"data: [DONE]\n\n"]
    assert meter.done


def test_a_client_that_asked_gets_the_usage_chunk_and_continuous_stats() -> None:
    meter = StreamMeter(include_usage=True, continuous_usage=True)
    first = chunk([{"text": "a"}], u(3, 1))
    last = chunk([], u(3, 1))
    assert meter.feed(first + last) == [first, last]


def test_events_split_across_reads_are_reassembled() -> None:
    meter = StreamMeter(include_usage=True, continuous_usage=True)
    data = chunk([{"text": "a"}], u(2, 1)) + b"data: [DONE]\n\n"
    out = []
    for i in range(len(data)):
        out += meter.feed(data[i : i + 1])
    assert b"".join(out) == data
    assert meter.usage == Usage(2, 1) and meter.done


def test_an_upstream_error_event_is_not_forwarded() -> None:
    meter = StreamMeter(include_usage=False, continuous_usage=False)
    assert meter.feed(b'data: {"error": {"message": "secret detail"}}\n\n') == []
    assert meter.upstream_error


def test_usage_from_ignores_malformed_usage() -> None:
    assert usage_from({"usage": {"prompt_tokens": "3"}}) is None
    assert usage_from({"usage": None}) is None
    assert usage_from({"usage": u(1, 2)}) == Usage(1, 2)


def _chunk(text: str, usage_last: bool = True) -> bytes:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    body = {"id": "c", "choices": [{"index": 0, "text": text}], "usage": usage}
    if not usage_last:
        body = {"usage": usage, "id": "c", "choices": [{"index": 0, "text": text}]}
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


@pytest.mark.parametrize("text", ["plain", 'tricky ,"usage":{"prompt_tokens":999} inside'])
@pytest.mark.parametrize("usage_last", [True, False])
def test_the_fast_path_strips_per_chunk_usage_exactly_like_the_full_parse(
    text: str, usage_last: bool
) -> None:
    meter = StreamMeter(include_usage=False, continuous_usage=False)
    [out] = meter.feed(_chunk(text, usage_last))
    forwarded = json.loads(out.removeprefix(b"data: ").strip())
    assert forwarded == {"id": "c", "choices": [{"index": 0, "text": text}]}
    assert meter.usage is not None and (
        meter.usage.prompt_tokens,
        meter.usage.completion_tokens,
    ) == (3, 2)
    assert meter.first_content


def test_the_fast_path_keeps_usage_when_the_client_asked_for_it() -> None:
    meter = StreamMeter(include_usage=True, continuous_usage=True)
    event = _chunk("x")
    assert meter.feed(event) == [event]
