"""What the gateway reads from vLLM's own answers: its context length and its refusals (pure).

vLLM's 400s are the client's to read (``max_tokens`` above the context, a prompt that does not
fit, a bad type...), so their message is passed on. vLLM's request-validation messages quote up
to 200 characters of each offending ``input`` — possibly prompt text — so those inputs are cut
out: what remains names the field and the rule, like the gateway's own validation errors.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Final

_VALIDATION_HEAD: Final = re.compile(r"^\d+ validation errors?:$")
_MAX_MESSAGE: Final = 1000


def max_model_len_from(models: Any) -> int | None:
    """``max_model_len`` of the first model in a /v1/models answer, if vLLM reported one."""
    data = models.get("data") if isinstance(models, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    value = data[0].get("max_model_len")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def refusal_message(payload: bytes) -> str | None:
    """The public part of the message of an error vLLM answered, or None if it sent none."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message.strip():
        return None
    return public_message(message)


def public_message(message: str) -> str:
    """``message`` without the inputs a validation error quotes, at most 1,000 characters."""
    head, *rest = message.strip().splitlines()
    if not _VALIDATION_HEAD.match(head.strip()):
        return _cap(message.strip())
    parts = [_validation_item(line.strip()) for line in rest]
    return _cap(f"{head.strip()} " + "; ".join(p for p in parts if p))


def _validation_item(line: str) -> str | None:
    """``loc: msg`` from one line of vLLM's list (``{'type': ..., 'loc': ..., 'msg': ...}``)."""
    if line.startswith("...and "):
        return line
    try:
        item = ast.literal_eval(line)  # a dict's repr, as vLLM prints it; literals only
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        item = None
    if isinstance(item, dict):
        loc, msg = item.get("loc"), item.get("msg")
        return f"{loc}: {msg}" if isinstance(loc, str) and isinstance(msg, str) else None
    # Not a literal (an object in ctx): take the two fields by shape, never the input.
    found = re.search(r"'loc': '([^']*)', 'msg': '([^']*)'", line)
    return f"{found.group(1)}: {found.group(2)}" if found else None


def _cap(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"
