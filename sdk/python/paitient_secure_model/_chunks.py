"""From a stream's events to the SDK's chunks, shared by the sync and async streams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from ._error_mapping import Redact, stream_ended_early
from ._sse import ServerSentEvent, SSEDecoder, event_payload
from ._types import ChatChunk, GenerationChunk

T = TypeVar("T", GenerationChunk, ChatChunk)


class Chunks(Protocol[T]):
    """Turns the events of one stream into the SDK's chunks."""

    def feed(self, payload: Mapping[str, Any]) -> list[T]: ...

    def end(self) -> list[T]: ...


class GenerationChunks:
    """A generate stream's events are its chunks."""

    def feed(self, payload: Mapping[str, Any]) -> list[GenerationChunk]:
        return [GenerationChunk.from_json(payload)]

    def end(self) -> list[GenerationChunk]:
        return []


class ChatChunks:
    """OpenAI's chat events as chunks like a generate stream's: text chunks, then one last
    chunk with the finish reason and the usage, which the wire sends as two events. A role-only
    event carries nothing to show and is dropped."""

    def __init__(self) -> None:
        self._final: ChatChunk | None = None  # the finish reason, waiting for the usage

    def feed(self, payload: Mapping[str, Any]) -> list[ChatChunk]:
        chunk = ChatChunk.from_json(payload)
        out: list[ChatChunk] = []
        if self._final is not None:
            final, self._final = self._final, None
            if chunk.usage is not None and not chunk.content and chunk.finish_reason is None:
                return [replace(final, usage=chunk.usage, raw=chunk.raw)]
            out.append(final)
        if chunk.content:
            out.append(ChatChunk(content=chunk.content, raw=chunk.raw))
        if chunk.finish_reason is not None:
            final = ChatChunk(finish_reason=chunk.finish_reason, usage=chunk.usage, raw=chunk.raw)
            if final.usage is None:
                self._final = final
            else:
                out.append(final)
        return out

    def end(self) -> list[ChatChunk]:
        final, self._final = self._final, None
        return [] if final is None else [final]


class ChunkReader(Generic[T]):
    """Lines in, chunks out: the part of reading a stream every stream shares."""

    def __init__(self, request_id: str | None, chunks: Chunks[T], redact: Redact) -> None:
        self._request_id = request_id
        self._redact = redact
        self._decoder = SSEDecoder()
        self._chunks: Chunks[T] = chunks
        self.done = False  # [DONE] arrived
        self.finished = False  # the chunk with finish_reason arrived

    def feed(self, line: str) -> list[T]:
        """The chunks this line completes; raises on an ``error`` event."""
        event = self._decoder.decode(line)
        return [] if event is None else self._event(event)

    def flush(self) -> list[T]:
        """The chunks of an event left without its closing blank line, and any held back."""
        if self.done:
            return []
        event = self._decoder.flush()
        out = [] if event is None else self._event(event)
        return out if self.done else out + self._seen(self._chunks.end())

    def check_complete(self) -> None:
        """Raise if the body ended before the final chunk or [DONE]: the connection broke."""
        if not (self.done or self.finished):
            raise stream_ended_early(self._request_id)

    def _event(self, event: ServerSentEvent) -> list[T]:
        payload = event_payload(event.data, self._request_id, self._redact)
        if payload is None:
            self.done = True
            return self._seen(self._chunks.end())
        return self._seen(self._chunks.feed(payload))

    def _seen(self, chunks: list[T]) -> list[T]:
        if any(chunk.is_final for chunk in chunks):
            self.finished = True
        return chunks
