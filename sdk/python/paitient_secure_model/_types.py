"""Typed, immutable results for every /v1 answer, each parsed from the contract's JSON.

Fields the contract names are attributes; anything newer the server adds stays reachable in
``raw`` so an older SDK keeps working against a newer server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from ._paitient_error import PaitientError

__all__ = [
    "ChatChunk",
    "ChatMessage",
    "ChatResult",
    "Condition",
    "DeletedDeployment",
    "Deployment",
    "DeploymentState",
    "DeploymentStatus",
    "GenerationChunk",
    "GenerationResult",
    "Subscription",
    "Usage",
]

DeploymentState = Literal["pending", "progressing", "ready", "degraded", "failed", "scaled-to-zero"]
"""The values of ``status`` the contract names; typed as ``str`` on results so a new one is
not an error."""

_T = TypeVar("_T")


def _bad(what: str, key: str) -> PaitientError:
    return PaitientError(
        f"Unexpected response from the API: {what} has no valid {key!r}", type="invalid_response"
    )


def _obj(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PaitientError(
            f"Unexpected response from the API: {what} is not a JSON object",
            type="invalid_response",
            body=data,
        )
    return data


def _req(data: Mapping[str, Any], key: str, kind: type[_T], what: str) -> _T:
    value = data.get(key)
    # bool is an int in Python; a count must not silently accept true/false.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(what, key)
    return value


def _opt(data: Mapping[str, Any], key: str, kind: type[_T], default: _T) -> _T:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return default
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if not isinstance(value, str):
        return None
    # fromisoformat only learnt "Z" in 3.11.
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Deployment:
    """A model deployed into the caller's secure environment; ``id`` is its name."""

    id: str
    name: str
    model_name: str
    status: str
    use_gpu: bool = True
    gpu_count: int | None = None
    replicas: int = 1
    ready_replicas: int = 0
    endpoint: str | None = None
    message: str = ""
    created_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Deployment:
        """Parse a Deployment object as the API returns it."""
        obj = _obj(data, "deployment")
        ident = _req(obj, "id", str, "deployment")
        return cls(
            id=ident,
            name=_opt(obj, "name", str, ident),
            model_name=_req(obj, "model_name", str, "deployment"),
            status=_req(obj, "status", str, "deployment"),
            use_gpu=_opt(obj, "use_gpu", bool, True),
            gpu_count=_opt_int(obj, "gpu_count"),
            replicas=_opt(obj, "replicas", int, 1),
            ready_replicas=_opt(obj, "ready_replicas", int, 0),
            endpoint=_opt_str(obj, "endpoint"),
            message=_opt(obj, "message", str, ""),
            created_at=_time(obj, "created_at"),
            raw=dict(obj),
        )


@dataclass(frozen=True)
class Condition:
    """One Kubernetes-style condition of a deployment (``type`` is e.g. ``Ready``)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Condition:
        """Parse one entry of a status answer's ``conditions``."""
        obj = _obj(data, "condition")
        return cls(
            type=_req(obj, "type", str, "condition"),
            status=_req(obj, "status", str, "condition"),
            reason=_opt(obj, "reason", str, ""),
            message=_opt(obj, "message", str, ""),
        )


@dataclass(frozen=True)
class DeploymentStatus:
    """Where a deployment stands: ``status`` plus replica counts and conditions."""

    id: str
    status: str
    ready_replicas: int = 0
    replicas: int = 0
    message: str = ""
    conditions: tuple[Condition, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_ready(self) -> bool:
        """True once the deployment serves requests: now, or, at zero replicas, once the replica
        a request asks for has started (generate waits for it)."""
        return self.status in ("ready", "scaled-to-zero")

    @property
    def is_failed(self) -> bool:
        """True when the deployment will not become ready without a change."""
        return self.status == "failed"

    @classmethod
    def from_json(cls, data: Any) -> DeploymentStatus:
        """Parse the answer of ``GET /deployments/{id}/status``."""
        obj = _obj(data, "deployment status")
        conditions = obj.get("conditions")
        return cls(
            id=_req(obj, "id", str, "deployment status"),
            status=_req(obj, "status", str, "deployment status"),
            ready_replicas=_opt(obj, "ready_replicas", int, 0),
            replicas=_opt(obj, "replicas", int, 0),
            message=_opt(obj, "message", str, ""),
            conditions=tuple(Condition.from_json(c) for c in conditions)
            if isinstance(conditions, list)
            else (),
            raw=dict(obj),
        )


@dataclass(frozen=True)
class DeletedDeployment:
    """The answer to a delete: the deletion was accepted and proceeds in the background."""

    id: str
    deleted: bool

    @classmethod
    def from_json(cls, data: Any) -> DeletedDeployment:
        """Parse the answer of ``DELETE /deployments/{id}``."""
        obj = _obj(data, "delete answer")
        return cls(
            id=_req(obj, "id", str, "delete answer"), deleted=_opt(obj, "deleted", bool, True)
        )


@dataclass(frozen=True)
class Usage:
    """Tokens metered for one generation."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_json(cls, data: Any) -> Usage:
        """Parse a ``usage`` object; a missing count is 0."""
        obj = _obj(data, "usage")
        prompt = _opt(obj, "prompt_tokens", int, 0)
        completion = _opt(obj, "completion_tokens", int, 0)
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=_opt(obj, "total_tokens", int, prompt + completion),
        )


@dataclass(frozen=True)
class GenerationResult:
    """The full answer of a non-streaming generate call."""

    id: str
    deployment_id: str
    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> GenerationResult:
        """Parse the answer of ``POST /generate``."""
        obj = _obj(data, "generation")
        usage = obj.get("usage")
        return cls(
            id=_opt(obj, "id", str, ""),
            deployment_id=_opt(obj, "deployment_id", str, ""),
            text=_req(obj, "text", str, "generation"),
            finish_reason=_opt_str(obj, "finish_reason"),
            usage=Usage.from_json(usage) if isinstance(usage, Mapping) else Usage(),
            raw=dict(obj),
        )


@dataclass(frozen=True)
class GenerationChunk:
    """One piece of a streamed generation.

    Text chunks carry ``text``; the last chunk has ``text == ""`` and carries
    ``finish_reason`` and ``usage``.
    """

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        """True for the chunk that ends the stream."""
        return self.finish_reason is not None

    @classmethod
    def from_json(cls, data: Any) -> GenerationChunk:
        """Parse one ``data:`` event of a generate stream."""
        obj = _obj(data, "stream event")
        usage = obj.get("usage")
        return cls(
            text=_opt(obj, "text", str, ""),
            finish_reason=_opt_str(obj, "finish_reason"),
            usage=Usage.from_json(usage) if isinstance(usage, Mapping) else None,
            raw=dict(obj),
        )


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation: its ``role`` (``system``, ``user``, ``assistant``...)
    and its text."""

    role: str
    content: str

    @classmethod
    def from_json(cls, data: Any) -> ChatMessage:
        """Parse a ``message`` object; a message without text (a tool call) has ``""``."""
        obj = _obj(data, "message")
        return cls(role=_opt(obj, "role", str, "assistant"), content=_opt(obj, "content", str, ""))


@dataclass(frozen=True)
class ChatResult:
    """The full answer of a non-streaming chat call (its first choice)."""

    id: str
    deployment_id: str
    message: ChatMessage
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The answer's text: ``message.content``."""
        return self.message.content

    @classmethod
    def from_json(cls, data: Any, deployment_id: str) -> ChatResult:
        """Parse the answer of ``POST /chat/completions`` made to ``deployment_id``."""
        obj = _obj(data, "chat completion")
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _bad("chat completion", "choices")
        choice = _obj(choices[0], "chat choice")
        usage = obj.get("usage")
        return cls(
            id=_opt(obj, "id", str, ""),
            deployment_id=deployment_id,
            message=ChatMessage.from_json(choice.get("message")),
            finish_reason=_opt_str(choice, "finish_reason"),
            usage=Usage.from_json(usage) if isinstance(usage, Mapping) else Usage(),
            model=_opt(obj, "model", str, ""),
            raw=dict(obj),
        )


@dataclass(frozen=True)
class ChatChunk:
    """One piece of a streamed chat answer.

    Chunks carry ``content`` (the next piece of the answer's text); the last chunk has
    ``content == ""`` and carries ``finish_reason`` and ``usage``.
    """

    content: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        """True for the chunk that ends the answer."""
        return self.finish_reason is not None

    @classmethod
    def from_json(cls, data: Any) -> ChatChunk:
        """Parse one ``chat.completion.chunk`` event as it is on the wire (its first choice);
        the stream then joins the finish reason and the usage into one last chunk."""
        obj = _obj(data, "stream event")
        choices = obj.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        choice = choice if isinstance(choice, Mapping) else {}
        delta = choice.get("delta")
        usage = obj.get("usage")
        return cls(
            content=_opt(delta, "content", str, "") if isinstance(delta, Mapping) else "",
            finish_reason=_opt_str(choice, "finish_reason"),
            usage=Usage.from_json(usage) if isinstance(usage, Mapping) else None,
            raw=dict(obj),
        )


@dataclass(frozen=True)
class Subscription:
    """The caller's plan and its metered usage in the current period."""

    tier: str
    current_usage: int
    usage_limit: int | None
    period_start: datetime | None = None
    period_end: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Subscription:
        """Parse the answer of ``GET /subscription``; ``usage_limit`` None means unlimited."""
        obj = _obj(data, "subscription")
        return cls(
            tier=_req(obj, "tier", str, "subscription"),
            current_usage=_opt(obj, "current_usage", int, 0),
            usage_limit=_opt_int(obj, "usage_limit"),
            period_start=_time(obj, "period_start"),
            period_end=_time(obj, "period_end"),
            raw=dict(obj),
        )
