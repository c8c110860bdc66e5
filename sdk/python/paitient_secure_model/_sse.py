"""Server-sent events: the line decoder, and each event's ``data`` as a JSON payload or error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._error_mapping import Redact, event_error
from ._exceptions import ServiceError


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its ``data`` lines joined by newlines."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed lines (without their line ending); get an event back at each blank line.

    Follows the WHATWG rules the contract needs: comments, ``field: value`` with one optional
    space, multi-line ``data``, and dispatch on a blank line.
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        """Consume one line; return the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def flush(self) -> ServerSentEvent | None:
        """The event still pending when the stream ended without its blank line."""
        return self._dispatch()

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._id)
        self._data = []
        self._event = ""
        return event


def event_payload(data: str, request_id: str | None, redact: Redact) -> Mapping[str, Any] | None:
    """One event's ``data`` as a JSON object; None for the ``[DONE]`` sentinel; raises the
    error of an ``error`` event."""
    if data.strip() == "[DONE]":
        return None
    try:
        payload = json.loads(data)
    except json.JSONDecodeError:
        raise ServiceError(
            "Unexpected stream event from the API: not JSON",
            type="invalid_response",
            request_id=request_id,
            body=data,
        ) from None
    if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
        raise event_error(payload["error"], request_id, redact)
    if not isinstance(payload, Mapping):
        raise ServiceError(
            "Unexpected stream event from the API: not a JSON object",
            type="invalid_response",
            request_id=request_id,
            body=payload,
        )
    return payload
