"""vLLM 0.32's OpenAI protocol as the stand-in speaks it: request checks, tokens, outputs (pure).

What a request is refused for, with which status, shape and words, follows what vLLM 0.32.0
answered on this machine (tests/vllm runs the same contract tests against both). Requests are
read by pydantic models with vLLM's lax types ("5" is 5, "yes" is True), and a refusal is
``{"error": {"message", "type", "param", "code"}}``.

Tokens: a completion prompt is one token per whitespace-separated word; a chat prompt is first
rendered through a chat template (one role marker per message plus the generation prompt), so
its count includes the template as a real model's does. The output echoes the prompt's words,
cycled (choice ``i`` starts ``i`` words later), one word per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

FinishReason = Literal["stop", "length"]
_MAX_REPORTED_ERRORS: Final = 10
_MAX_INPUT_CHARS: Final = 200
_TYPE_MARKERS: Final = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


class Refusal(Exception):
    """A request vLLM answers with an error instead of a completion."""

    def __init__(self, status: int, kind: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.param = status, kind, message, param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.status,
            }
        }


def bad_request(message: str, parameter: str | None = None, value: object = None) -> Refusal:
    """vLLM's ``VLLMValidationError``: the parameter and value are appended to the message."""
    if parameter is not None:
        detail = f"parameter={parameter}" + ("" if value is None else f", value={value}")
        message = f"{message} ({detail})"
    return Refusal(400, "BadRequestError", message, parameter)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    max_tokens: int | None = None
    n: int = 1
    temperature: float | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    ignore_eos: bool = False


class CompletionRequest(_Request):
    prompt: str | list[str] | list[int] | None = None


class ChatRequest(_Request):
    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = None


@dataclass(frozen=True)
class Plan:
    """What one request will produce: prompt tokens, and per choice its tokens and ending."""

    prompt_tokens: int
    choices: list[Choice]

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.tokens) for c in self.choices)


@dataclass(frozen=True)
class Choice:
    tokens: list[str]  # the text of each generated token (the stop string's cut off)
    finish_reason: FinishReason
    stop_reason: str | None


def read_request(body: Any, chat: bool) -> CompletionRequest | ChatRequest:
    """The request as vLLM's models read it; ``Refusal`` as vLLM words its validation errors."""
    model = ChatRequest if chat else CompletionRequest
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _validation_refusal(exc) from None


def _validation_refusal(exc: ValidationError) -> Refusal:
    errors = exc.errors(include_url=False)
    lines = []
    for err in errors[:_MAX_REPORTED_ERRORS]:
        item = {k: v for k, v in err.items() if k in ("type", "loc", "msg", "input")}
        item["loc"] = _loc(err["loc"])
        if "input" in item:
            item["input"] = _summary(item["input"])
        lines.append(f"  {item}")
    label = "error" if len(errors) == 1 else "errors"
    message = f"{len(errors)} validation {label}:\n" + "\n".join(lines)
    return Refusal(400, "Bad Request", message, _loc(errors[0]["loc"]))


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not ("[" in str(p) or str(p) in _TYPE_MARKERS)]
    return ".".join(["body", *parts])


def _summary(value: object) -> object:
    if isinstance(value, (list, tuple, set, dict)):
        return f"<{type(value).__name__} of {len(value)} items>"
    text = str(value)
    return text if len(text) <= _MAX_INPUT_CHARS else text[:_MAX_INPUT_CHARS] + "...[truncated]"


def chat_template(messages: list[dict[str, Any]]) -> str:
    """The rendered chat prompt: a role marker per message, then the generation prompt."""
    parts = [f"<|{m.get('role', 'user')}|> {_content(m.get('content'))}" for m in messages]
    return " ".join([*parts, "<|assistant|>"])


def _content(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _prompt_words(request: CompletionRequest | ChatRequest) -> tuple[int, list[str]]:
    """(prompt tokens, the words the output echoes)."""
    if isinstance(request, ChatRequest):
        content = " ".join(_content(m.get("content")) for m in request.messages)
        return len(chat_template(request.messages).split()), content.split()
    prompt = request.prompt
    if isinstance(prompt, list):
        words = [str(p) for p in prompt]
        return (len(words), words) if prompt and isinstance(prompt[0], int) else _split(words)
    return _split([prompt or ""])


def _split(texts: list[str]) -> tuple[int, list[str]]:
    words = " ".join(texts).split()
    return len(words), words


def plan(
    request: CompletionRequest | ChatRequest,
    served_model: str,
    max_model_len: int,
    eos_after: int,
) -> Plan:
    """What vLLM would generate, or the ``Refusal`` it would answer. ``eos_after`` stands for the
    model's end-of-sequence token: the output stops there (``finish_reason: stop``)."""
    if request.model is not None and request.model != served_model:
        raise Refusal(
            404,
            "NotFoundError",
            f"The model `{request.model}` does not exist. Valid aliases: {served_model}.",
            "model",
        )
    _check_sampling(request, max_model_len)
    prompt_tokens, words = _prompt_words(request)
    if prompt_tokens > max_model_len:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, your "
            f"prompt contains {prompt_tokens} input tokens, which exceeds this limit even "
            "without any output tokens. Please reduce the length of the input prompt.",
            "input_tokens",
            prompt_tokens,
        )
    asked = _max_output(request)
    budget = min(asked if asked is not None else max_model_len, max_model_len - prompt_tokens)
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    words = words or ["empty"]
    choices = [
        _choice(words, i, budget, eos_after if not request.ignore_eos else budget, stops)
        for i in range(request.n)
    ]
    return Plan(prompt_tokens, choices)


def _max_output(request: CompletionRequest | ChatRequest) -> int | None:
    if isinstance(request, ChatRequest) and request.max_completion_tokens is not None:
        return request.max_completion_tokens
    return request.max_tokens


def _check_sampling(request: CompletionRequest | ChatRequest, max_model_len: int) -> None:
    if isinstance(request, ChatRequest) and not request.messages:
        raise Refusal(
            400,
            "BadRequestError",
            "Cannot apply chat template to an empty conversation. Provide at least one message.",
        )
    if isinstance(request, CompletionRequest) and not request.prompt:
        raise bad_request(
            "Either prompt or prompt_embeds must be provided and non-empty.", "prompt"
        )
    if request.stream_options is not None and not request.stream:
        raise bad_request(
            "Stream options can only be defined when `stream=True`.", "stream_options"
        )
    asked = _max_output(request)
    name = "max_tokens"
    if isinstance(request, ChatRequest) and request.max_completion_tokens is not None:
        name = "max_completion_tokens"
    if asked is not None and asked > max_model_len:
        raise bad_request(
            f"{name}={asked} cannot be greater than max_model_len={max_model_len}. "
            "Please request fewer output tokens.",
            name,
            asked,
        )
    if asked is not None and asked < 1:
        raise bad_request(f"{name} must be at least 1, got {asked}.", name, asked)
    if request.n < 1:
        raise bad_request(f"n must be at least 1, got {request.n}.")
    temperature = request.temperature
    if temperature is not None and temperature < 0:
        raise bad_request(
            f"temperature must be non-negative, got {float(temperature)}.",
            "temperature",
            float(temperature),
        )
    if temperature == 0 and request.n > 1:
        raise bad_request(f"n must be 1 when using greedy sampling, got {request.n}.")


def _choice(words: list[str], index: int, budget: int, eos_after: int, stops: list[str]) -> Choice:
    tokens: list[str] = []
    text = ""
    for i in range(min(budget, eos_after)):
        piece = words[(index + i) % len(words)] + " "
        tokens.append(piece)
        text += piece
        for stop in stops:
            at = text.find(stop) if stop else -1
            if at != -1:
                # vLLM counts the tokens that made the stop string, and cuts it from the text.
                kept = text[:at]
                return Choice(_cut(tokens, len(kept)), "stop", stop)
    finish: FinishReason = "length" if len(tokens) == budget else "stop"
    return Choice(tokens, finish, None)


def _cut(tokens: list[str], keep_chars: int) -> list[str]:
    """``tokens`` with their joined text cut to ``keep_chars``; the count of tokens stays."""
    out, left = [], keep_chars
    for token in tokens:
        out.append(token[: max(0, left)])
        left -= len(token)
    return out


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }
