"""The OpenAI wire format as the gateway sees it: request rewriting and usage in responses (pure).

Requests: ``model`` is forced to the served name; a missing ``max_tokens`` gets the gateway's
default (so the usage limit has a bound to reserve); streams always ask vLLM for
``include_usage`` and ``continuous_usage_stats``, whatever the client asked, so a stream that is
cut off can still be billed for what was generated.

Responses: ``StreamMeter`` splits the SSE byte stream into events, remembers the last usage seen,
and removes what the client did not ask for (the usage-only chunk, per-chunk usage).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from paitient_common.errors import RequestValidationError

COMPLETIONS: Final = "/v1/completions"
CHAT_COMPLETIONS: Final = "/v1/chat/completions"
_DONE: Final = b"[DONE]"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


_USAGE_KEY = b',"usage":'


def usage_from(obj: Any) -> Usage | None:
    """The ``usage`` of a response or chunk, if it has a well-formed one."""
    if not isinstance(obj, dict):
        return None
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(max(0, prompt), max(0, completion))


@dataclass(frozen=True)
class PreparedRequest:
    """The body to forward and what the gateway must remember of the client's request."""

    body: bytes
    stream: bool
    client_include_usage: bool
    client_continuous_usage: bool
    prompt_estimate: int
    max_completion: int

    @property
    def reserve(self) -> int:
        return self.prompt_estimate + self.max_completion


def _text_estimate(value: Any) -> int:
    """Tokens a text is at most likely to be: one per 3 bytes, rounded up, plus a little."""
    if isinstance(value, str):
        return math.ceil(len(value.encode()) / 3) + 1
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return len(value)  # a prompt given as token ids
        return sum(_text_estimate(v) for v in value)
    if isinstance(value, dict):
        return sum(_text_estimate(v) for v in value.values()) + 4
    return 1


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestValidationError(f"'{name}' must be a positive integer")
    return value


def prepare_request(
    route: str, raw: bytes, served_model: str, default_max_tokens: int
) -> PreparedRequest:
    """Validate and rewrite a completion request; ``RequestValidationError`` when it is unusable."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestValidationError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestValidationError("the body must be a JSON object")
    if route == CHAT_COMPLETIONS:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestValidationError("'messages' must be a non-empty list")
        prompt_estimate = _text_estimate(messages)
        names: tuple[str, ...] = ("max_completion_tokens", "max_tokens")
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, (str, list)) or not prompt:
            raise RequestValidationError("'prompt' must be a non-empty string or list")
        prompt_estimate = _text_estimate(prompt)
        names = ("max_tokens",)
    limits = [v for n in names if (v := _positive_int(body, n)) is not None]
    max_tokens = min(limits) if limits else default_max_tokens
    if not limits:
        body["max_tokens"] = default_max_tokens
    choices = max(_positive_int(body, "n") or 1, _positive_int(body, "best_of") or 1)
    body["model"] = served_model
    stream = body.get("stream") is True
    if "stream" in body and not isinstance(body["stream"], bool):
        raise RequestValidationError("'stream' must be a boolean")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestValidationError("'stream_options' must be an object")
    options = options or {}
    include_usage = stream and options.get("include_usage") is True
    continuous = stream and options.get("continuous_usage_stats") is True
    if stream:
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    else:
        body.pop("stream_options", None)
    return PreparedRequest(
        body=json.dumps(body, separators=(",", ":")).encode(),
        stream=stream,
        client_include_usage=include_usage,
        client_continuous_usage=continuous,
        prompt_estimate=prompt_estimate,
        max_completion=max_tokens * choices,
    )


class StreamMeter:
    """Feeds on upstream SSE bytes, yields the bytes the client should get, tracks usage.

    ``final`` is true once the usage-only chunk (or ``[DONE]``) has been seen: from then on the
    usage is known exactly, and the caller writes it to the ledger before forwarding the rest.
    """

    def __init__(self, include_usage: bool, continuous_usage: bool) -> None:
        self.include_usage = include_usage
        self.continuous_usage = continuous_usage
        self.usage: Usage | None = None
        self.final = False
        self.done = False
        self.first_content = False
        self.upstream_error = False
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Complete events in ``data`` (plus what was buffered), rewritten for the client."""
        self._buffer += data
        out: list[bytes] = []
        while True:
            # vLLM separates events with a blank line; tolerate CRLF too.
            end, sep = self._buffer.find(b"\n\n"), 2
            crlf = self._buffer.find(b"\r\n\r\n")
            if crlf != -1 and (end == -1 or crlf < end):
                end, sep = crlf, 4
            if end == -1:
                return out
            event, self._buffer = self._buffer[:end], self._buffer[end + sep :]
            rewritten = self._event(event)
            if rewritten is not None:
                out.append(rewritten + b"\n\n")

    def _event(self, event: bytes) -> bytes | None:
        data_lines = [line[5:].strip() for line in event.splitlines() if line.startswith(b"data:")]
        if not data_lines:
            return event  # comments, keep-alives
        payload = b"\n".join(data_lines)
        if payload == _DONE:
            self.final = self.done = True
            return event
        fast = self._content_chunk_fast(event, payload)
        if fast is not None:
            return fast
        try:
            chunk = json.loads(payload)
        except ValueError:
            return None  # never forward what we cannot read
        if not isinstance(chunk, dict):
            return None
        if "error" in chunk and "choices" not in chunk:
            self.upstream_error = True
            return None  # the caller answers with its own error event
        usage = usage_from(chunk)
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if usage is not None and not choices:  # the usage-only chunk that ends a stream
            self.final = True
            return event if self.include_usage else None
        if choices:
            self.first_content = True
        if "usage" in chunk and not self.continuous_usage:
            del chunk["usage"]
            return b"data: " + json.dumps(chunk, separators=(",", ":")).encode()
        return event

    def _content_chunk_fast(self, event: bytes, payload: bytes) -> bytes | None:
        """The common case without a full JSON round trip: a content chunk whose last key is
        the per-chunk ``usage`` vLLM adds for ``continuous_usage_stats``. Only the small usage
        object is parsed, and it is cut out of the bytes when the client did not ask for it.
        Anything else (no usage, usage-only, errors, another key order) returns None and takes
        the full parse."""
        cut = payload.rfind(_USAGE_KEY)
        if cut == -1 or not payload.endswith(b"}") or b'"choices":[]' in payload:
            return None
        if b'"choices":[{' not in payload[:cut]:
            return None
        try:
            usage = usage_from({"usage": json.loads(payload[cut + len(_USAGE_KEY) : -1])})
        except ValueError:
            return None  # "usage" was not the last key: the full parse handles it
        if usage is None:
            return None
        self.usage = usage
        self.first_content = True
        if self.continuous_usage:
            return event
        return b"data: " + payload[:cut] + b"}"


def error_event(body: dict[str, Any]) -> bytes:
    """An SSE event carrying the gateway's own error body."""
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
