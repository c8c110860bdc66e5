"""Between the API's ``generate`` and the OpenAI completions protocol the gateways speak (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from paitient_api.schemas import GenerateForDeployment, Generation, Usage


def completion_request(request: GenerateForDeployment, served_model: str) -> dict[str, Any]:
    return {
        "model": served_model,
        "prompt": request.prompt,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": request.stream,
        **({"stream_options": {"include_usage": True}} if request.stream else {}),
    }


def _usage(raw: Mapping[str, Any] | None) -> Usage:
    raw = raw or {}
    prompt, completion = int(raw.get("prompt_tokens", 0)), int(raw.get("completion_tokens", 0))
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def generation(body: Mapping[str, Any], deployment_id: str) -> Generation:
    choice = (body.get("choices") or [{}])[0]
    return Generation(
        id=str(body.get("id", "")),
        deployment_id=deployment_id,
        text=str(choice.get("text", "")),
        finish_reason=choice.get("finish_reason"),
        usage=_usage(body.get("usage")),
    )


def stream_event(chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Our SSE events for one OpenAI stream chunk: text deltas, then the final usage."""
    events: list[dict[str, Any]] = []
    for choice in chunk.get("choices") or []:
        if choice.get("text"):
            events.append({"text": choice["text"]})
        if choice.get("finish_reason"):
            events.append({"finish_reason": choice["finish_reason"]})
    if chunk.get("usage") and not chunk.get("choices"):
        events.append({"usage": _usage(chunk["usage"]).model_dump()})
    return events


def sse(data: Mapping[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()
