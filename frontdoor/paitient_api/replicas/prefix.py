"""The part of a request that picks its replica under ``prefix`` routing (pure).

vLLM's prefix cache reuses the KV blocks of a prompt's leading tokens, so what decides a cache
hit is how a prompt starts: a completion's ``prompt``, or a chat's messages in order (roles and
text; the system prompt comes first). The key is that leading text, cut at the deployment's
``prefixLength`` characters, with the caller's tenant in front: every gateway salts vLLM's
cache per tenant (``cache_salt``), so two tenants' identical prompts never share blocks and
gain nothing from meeting on one replica. The front door never tokenizes: characters stand in
for tokens (about four to a token in English).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from paitient_api.replicas.ring import stable_hash


def _content_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list (another part by its type)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict):
                parts.append(f"[{part.get('type', 'part')}]")
        return "".join(parts)
    return ""


def _prompt_text(prompt: Any, length: int) -> str:
    """A completion's prompt: text, the first of a batch, or token ids written out."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        first = prompt[0]
        if isinstance(first, str | list):
            return _prompt_text(first, length)
        if all(isinstance(token, int) for token in prompt[:length]):
            return json.dumps(prompt[:length])
    return ""


def leading_text(body: Mapping[str, Any], length: int) -> str:
    """At most ``length`` leading characters of what the model reads first."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts: list[str] = []
        size = 0
        for message in messages:
            if size >= length or not isinstance(message, dict):
                break
            text = f"{message.get('role', '')}\n{_content_text(message.get('content'))}\n"
            parts.append(text)
            size += len(text)
        return "".join(parts)[:length]
    return _prompt_text(body.get("prompt"), length)[:length]


def prefix_key(tenant: str, body: Mapping[str, Any], length: int) -> int:
    """Where on the ring this request's prefix lands, for this tenant."""
    return stable_hash(f"{tenant}\0{leading_text(body, length)}")
