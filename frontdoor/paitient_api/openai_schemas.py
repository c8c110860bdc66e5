"""The OpenAI-compatible bodies as the OpenAPI document describes them (pydantic).

The front door itself reads only ``model`` from a request (``openai_wire``) and forwards the
body as sent; the gateway checks what it meters (``messages`` / ``prompt``, ``max_tokens``,
``stream``) and the model server the rest. So every object here allows more fields than it
names: OpenAI's and vLLM's further parameters pass through, and so do the fields they add to
answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from paitient_api.schemas import Usage
from paitient_common.resources.modeldeployment import DEFAULT_MAX_CHOICES, MAX_CHOICES_CAP

MODEL_DESCRIPTION = (
    "A deployment id, or a model name (e.g. ZimaBlueAI/HuatuoGPT-o1-8B) when exactly one of "
    "your deployments serves it."
)
CHOICES_DESCRIPTION = (
    f"Completions to make; at most the deployment's spec.rateLimits.maxChoices "
    f"({DEFAULT_MAX_CHOICES} unless set, never above {MAX_CHOICES_CAP}): more is a 422."
)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Open):
    include_usage: bool | None = Field(
        default=None, description="Send a last chunk with the usage (it is metered either way)."
    )


class ChatMessage(_Open):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(_Open):
    """POST /v1/chat/completions: the model's chat template is applied by the model server."""

    model: str = Field(min_length=1, description=MODEL_DESCRIPTION)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    n: int = Field(default=1, ge=1, le=MAX_CHOICES_CAP, description=CHOICES_DESCRIPTION)
    stream: bool = False
    stream_options: StreamOptions | None = None


class CompletionRequest(_Open):
    """POST /v1/completions: raw text continued, no chat template."""

    model: str = Field(min_length=1, description=MODEL_DESCRIPTION)
    # vLLM refuses an empty prompt (400): the schema says so, so a client is told before.
    prompt: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
        | Annotated[list[int], Field(min_length=1)]
    ) = Field(description="Text, texts or token ids.")
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    # Not nullable: vLLM 0.32's completions refuse a null n (400), as the stand-in does.
    n: int = Field(default=1, ge=1, le=MAX_CHOICES_CAP, description=CHOICES_DESCRIPTION)
    best_of: int | None = Field(
        default=None, ge=1, le=MAX_CHOICES_CAP, description=CHOICES_DESCRIPTION
    )
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCompletionMessage(_Open):
    role: str
    content: str | None


class ChatCompletionChoice(_Open):
    index: int
    message: ChatCompletionMessage
    finish_reason: str | None


class ChatCompletion(_Open):
    """A chat answer; streamed, ``chat.completion.chunk`` events with a ``delta`` instead of
    ``message``, then ``data: [DONE]``."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: Usage | None = None


class CompletionChoice(_Open):
    index: int
    text: str
    finish_reason: str | None


class Completion(_Open):
    """A completion; streamed, ``text_completion`` events, then ``data: [DONE]``."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class Model(_Open):
    """One of the caller's deployments that takes requests now."""

    id: str = Field(description="The deployment id: what 'model' takes.")
    object: Literal["model"]
    created: int
    owned_by: str
    root: str | None = Field(description="The model it serves.")


class ModelList(_Open):
    object: Literal["list"]
    data: list[Model]


class OpenAIErrorDetail(BaseModel):
    type: str = Field(description="The same types as every other route (docs/rest-api.md).")
    message: str
    param: str | None = Field(description="The request field at fault, if one is.")
    code: str | None = Field(
        description="invalid_api_key, rate_limit_exceeded, model_not_found, model_ambiguous, "
        "or null."
    )
    request_id: str


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail
