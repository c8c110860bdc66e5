"""Server-sent events: a line decoder, and the sync and async streams of generation and chat
chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import httpx

from ._types import ChatChunk, GenerationChunk

if TYPE_CHECKING:
    from ._base import BaseClient

__all__ = [
    "AsyncChatStream",
    "AsyncGenerationStream",
    "ChatStream",
    "GenerationStream",
    "SSEDecoder",
    "ServerSentEvent",
]

T = TypeVar("T", GenerationChunk, ChatChunk)
_S = TypeVar("_S", bound="_Stream[Any]")
_A = TypeVar("_A", bound="_AsyncStream[Any]")


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


class _Chunks(Protocol[T]):
    """Turns the events of one stream into the SDK's chunks."""

    def feed(self, payload: Mapping[str, Any]) -> list[T]: ...

    def end(self) -> list[T]: ...


class _GenerationChunks:
    """A generate stream's events are its chunks."""

    def feed(self, payload: Mapping[str, Any]) -> list[GenerationChunk]:
        return [GenerationChunk.from_json(payload)]

    def end(self) -> list[GenerationChunk]:
        return []


class _ChatChunks:
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


class _ChunkReader(Generic[T]):
    """Lines in, chunks out: the part of reading a stream every stream shares."""

    def __init__(self, client: BaseClient, request_id: str | None, chunks: _Chunks[T]) -> None:
        self._client = client
        self._request_id = request_id
        self._decoder = SSEDecoder()
        self._chunks: _Chunks[T] = chunks
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
            raise self._client._stream_ended_early(self._request_id)

    def _event(self, event: ServerSentEvent) -> list[T]:
        payload = self._client._stream_payload(event.data, self._request_id)
        if payload is None:
            self.done = True
            return self._seen(self._chunks.end())
        return self._seen(self._chunks.feed(payload))

    def _seen(self, chunks: list[T]) -> list[T]:
        if any(chunk.is_final for chunk in chunks):
            self.finished = True
        return chunks


class _Stream(Generic[T]):
    """A stream of chunks over a 2xx response; iterate it, and close it (or use ``with``).

    The request was answered 2xx before this object exists, so it is never retried: a
    failure from here on raises (a mid-stream ``error`` event, or APIConnectionError).
    """

    def __init__(self, response: httpx.Response, client: BaseClient) -> None:
        self.response = response
        self.request_id: str | None = response.headers.get("x-request-id")
        self._client = client
        self._iterator: Iterator[T] = self._iter_chunks()

    def _new_chunks(self) -> _Chunks[T]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[T]:
        return self._iterator

    def __next__(self) -> T:
        return next(self._iterator)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection, also when the stream was not read to the end."""
        self.response.close()

    def _iter_chunks(self) -> Iterator[T]:
        reader = _ChunkReader(self._client, self.request_id, self._new_chunks())
        try:
            for line in self.response.iter_lines():
                yield from reader.feed(line)
                if reader.done:
                    return
            yield from reader.flush()
            reader.check_complete()
        except httpx.TransportError as exc:
            raise self._client._connection_error(exc) from exc
        finally:
            self.response.close()


class _AsyncStream(Generic[T]):
    """The async twin of _Stream: ``async for chunk in stream``."""

    def __init__(self, response: httpx.Response, client: BaseClient) -> None:
        self.response = response
        self.request_id: str | None = response.headers.get("x-request-id")
        self._client = client
        self._iterator: AsyncIterator[T] = self._iter_chunks()

    def _new_chunks(self) -> _Chunks[T]:
        raise NotImplementedError

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterator

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connection, also when the stream was not read to the end."""
        await self.response.aclose()

    async def _iter_chunks(self) -> AsyncIterator[T]:
        reader = _ChunkReader(self._client, self.request_id, self._new_chunks())
        try:
            async for line in self.response.aiter_lines():
                for chunk in reader.feed(line):
                    yield chunk
                if reader.done:
                    return
            for chunk in reader.flush():
                yield chunk
            reader.check_complete()
        except httpx.TransportError as exc:
            raise self._client._connection_error(exc) from exc
        finally:
            await self.response.aclose()


class GenerationStream(_Stream[GenerationChunk]):
    """The chunks of a streamed generation; iterate it, and close it (or use ``with``).

    The request was answered 2xx before this object exists, so it is never retried: a
    failure from here on raises (a mid-stream ``error`` event, or APIConnectionError).
    """

    def _new_chunks(self) -> _Chunks[GenerationChunk]:
        return _GenerationChunks()


class AsyncGenerationStream(_AsyncStream[GenerationChunk]):
    """The async twin of GenerationStream: ``async for chunk in stream``."""

    def _new_chunks(self) -> _Chunks[GenerationChunk]:
        return _GenerationChunks()


class ChatStream(_Stream[ChatChunk]):
    """The chunks of a streamed chat answer: ``content`` pieces, then one last chunk with
    ``finish_reason`` and ``usage``. Iterate it, and close it (or use ``with``); never retried
    once it exists."""

    def _new_chunks(self) -> _Chunks[ChatChunk]:
        return _ChatChunks()


class AsyncChatStream(_AsyncStream[ChatChunk]):
    """The async twin of ChatStream: ``async for chunk in stream``."""

    def _new_chunks(self) -> _Chunks[ChatChunk]:
        return _ChatChunks()
