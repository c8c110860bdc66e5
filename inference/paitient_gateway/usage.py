"""The OpenAI wire format as the gateway sees it: request rewriting and usage in responses (pure).

Requests: ``n`` and ``best_of`` are capped per deployment (one request must not occupy a shared
model); ``model`` is forced to the served name; ``cache_salt`` is the caller's tenant's
(``cache_salt.py``), and a client's own is refused; a missing ``max_tokens`` gets the gateway's
default, never above the model's context (so the usage limit has a bound to reserve); streams
always ask vLLM for ``include_usage`` and ``continuous_usage_stats``, whatever the client asked,
so a stream that is cut off can still be billed for what was generated. Everything else is
vLLM's to judge: the gateway reads fields the way vLLM's pydantic models do and refuses nothing
else vLLM would accept.

Responses: ``StreamMeter`` splits the SSE byte stream into events, remembers the last usage seen,
and removes what the client did not ask for (the usage-only chunk, per-chunk usage).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from paitient_common.errors import RequestValidationError
from paitient_common.resources.modeldeployment import DEFAULT_MAX_CHOICES
from paitient_gateway.cache_salt import FIELD as CACHE_SALT

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
# vLLM puts one choice in each content chunk, its index first: '"choices":[{"index":1,'.
_FIRST_CHOICE_INDEX: Final = re.compile(rb'"choices":\[\{"index":(\d+)[,}]')


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


_INT: Final = TypeAdapter(int)
_BOOL: Final = TypeAdapter(bool)


def _lax(adapter: TypeAdapter[Any], value: Any) -> Any:
    """``value`` read the way vLLM's pydantic models read it ("5" is 5, "yes" is True), or None
    when they would refuse it: vLLM then answers the 400 itself, in its own words."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _count(body: dict[str, Any], name: str) -> int | None:
    value = _lax(_INT, body.get(name)) if body.get(name) is not None else None
    return value if isinstance(value, int) and value >= 1 else None


def _stream_options(options: Any) -> tuple[bool, bool] | None:
    """(include_usage, continuous_usage_stats) of a readable ``stream_options``."""
    if not isinstance(options, dict):
        return None
    flags = [options.get(k) for k in ("include_usage", "continuous_usage_stats")]
    read = [False if v is None else _lax(_BOOL, v) for v in flags]
    if any(v is None for v in read):
        return None
    return read[0] is True, read[1] is True


def default_max_tokens(configured: int, max_model_len: int | None) -> int:
    """``max_tokens`` for a request that sets none: vLLM refuses one above ``max_model_len``
    (and trims one that only overflows with the prompt to what the context has left)."""
    return configured if max_model_len is None else min(configured, max_model_len)


def choices_problem(body: dict[str, Any], max_choices: int) -> str | None:
    """Why a request asks for more completions than the deployment serves at once, or None
    (pure): ``n`` and ``best_of`` as vLLM would read them, each at most ``max_choices``."""
    for name in ("n", "best_of"):
        asked = _count(body, name)
        if asked is not None and asked > max_choices:
            return (
                f"{name} is {asked}: this deployment serves at most {max_choices} completions per "
                "request (spec.rateLimits.maxChoices); ask again with fewer, or send several "
                "requests"
            )
    return None


CACHE_SALT_REFUSAL: Final = (
    f"{CACHE_SALT}: not accepted from clients; the gateway salts the prompt cache with your "
    "tenant on every request, so no other tenant's cached prompts can answer yours: remove the "
    "field"
)


def prepare_request(
    route: str,
    raw: bytes,
    served_model: str,
    configured_max_tokens: int,
    max_model_len: int | None = None,
    max_choices: int = DEFAULT_MAX_CHOICES,
    cache_salt: str | None = None,
) -> PreparedRequest:
    """Rewrite a completion request for vLLM and bound what it can cost; ``cache_salt`` is the
    caller's tenant's (``cache_salt.py``).

    Refused here: a body that is not a JSON object, one asking for more completions than the
    deployment allows (``n`` / ``best_of`` above ``max_choices``: 422), and a client's own
    ``cache_salt`` (400); every other check is vLLM's, so a client sees vLLM's own message.
    Fields the gateway cannot read as vLLM would are forwarded untouched (vLLM refuses them) and
    reserve the defaults."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestValidationError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestValidationError("the body must be a JSON object")
    if problem := choices_problem(body, max_choices):
        raise RequestValidationError(problem, status=422)
    if body.get(CACHE_SALT) is not None:
        raise RequestValidationError(CACHE_SALT_REFUSAL, param=CACHE_SALT)
    if cache_salt is not None:
        body[CACHE_SALT] = cache_salt
    else:
        body.pop(CACHE_SALT, None)  # a null is no salt: vLLM would read it as none too
    chat = route == CHAT_COMPLETIONS
    prompt_estimate = _text_estimate(body.get("messages" if chat else "prompt"))
    names = ("max_completion_tokens", "max_tokens") if chat else ("max_tokens",)
    default = default_max_tokens(configured_max_tokens, max_model_len)
    if all(body.get(n) is None for n in names):
        body["max_tokens"] = default
    limits = [v for n in names if (v := _count(body, n)) is not None]
    max_tokens = min(limits) if limits else default
    if max_model_len is not None:
        max_tokens = min(max_tokens, max_model_len)  # vLLM generates no more than its context
    choices = max(_count(body, "n") or 1, _count(body, "best_of") or 1)
    body["model"] = served_model
    stream = _lax(_BOOL, body["stream"]) is True if body.get("stream") is not None else False
    client = _stream_options(body.get("stream_options"))
    if stream:
        body["stream"] = True
        if client is not None or body.get("stream_options") is None:
            body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    include_usage, continuous = client if stream and client is not None else (False, False)
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
    Before that, ``usage`` adds up the per-chunk usage of each choice: with ``n > 1`` vLLM's
    ``continuous_usage_stats`` count the tokens of the chunk's own choice, not of all of them.
    """

    def __init__(self, include_usage: bool, continuous_usage: bool) -> None:
        self.include_usage = include_usage
        self.continuous_usage = continuous_usage
        self._exact: Usage | None = None
        self._by_choice: dict[int, Usage] = {}
        self.final = False
        self.done = False
        self.first_content = False
        self.upstream_error = False
        self._buffer = b""

    @property
    def usage(self) -> Usage | None:
        """The stream's usage: exact once the usage chunk came, else what the choices reported."""
        if self._exact is not None or not self._by_choice:
            return self._exact
        seen = self._by_choice.values()
        return Usage(max(u.prompt_tokens for u in seen), sum(u.completion_tokens for u in seen))

    def _choice_usage(self, index: int, usage: Usage) -> None:
        self._by_choice[index] = usage

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
        choices = chunk.get("choices")
        if usage is not None and not choices:  # the usage-only chunk that ends a stream
            self._exact = usage
            self.final = True
            return event if self.include_usage else None
        if usage is not None and isinstance(choices, list):
            for choice in choices:
                index = choice.get("index", 0) if isinstance(choice, dict) else 0
                self._choice_usage(index if isinstance(index, int) else 0, usage)
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
        index = _FIRST_CHOICE_INDEX.search(payload, 0, cut)
        if index is None:
            return None
        try:
            usage = usage_from({"usage": json.loads(payload[cut + len(_USAGE_KEY) : -1])})
        except ValueError:
            return None  # "usage" was not the last key: the full parse handles it
        if usage is None:
            return None
        self._choice_usage(int(index.group(1)), usage)
        self.first_content = True
        if self.continuous_usage:
            return event
        return b"data: " + payload[:cut] + b"}"


def error_event(body: dict[str, Any]) -> bytes:
    """An SSE event carrying the gateway's own error body."""
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
