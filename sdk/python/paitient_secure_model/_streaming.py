"""Server-sent events: a line decoder, and the sync and async streams of generation chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from ._types import GenerationChunk

if TYPE_CHECKING:
    from ._base import BaseClient

__all__ = ["AsyncGenerationStream", "GenerationStream", "SSEDecoder", "ServerSentEvent"]


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


class _ChunkReader:
    """Lines in, chunks out: the part of reading a stream both streams share."""

    def __init__(self, client: BaseClient, request_id: str | None) -> None:
        self._client = client
        self._request_id = request_id
        self._decoder = SSEDecoder()
        self.done = False  # [DONE] arrived
        self.finished = False  # the chunk with finish_reason arrived

    def feed(self, line: str) -> GenerationChunk | None:
        """The chunk this line completes, if any; raises on an ``error`` event."""
        event = self._decoder.decode(line)
        return None if event is None else self._chunk(event)

    def flush(self) -> GenerationChunk | None:
        """The chunk of an event left without its closing blank line."""
        event = self._decoder.flush()
        return None if event is None or self.done else self._chunk(event)

    def check_complete(self) -> None:
        """Raise if the body ended before the final chunk or [DONE]: the connection broke."""
        if not (self.done or self.finished):
            raise self._client._stream_ended_early(self._request_id)

    def _chunk(self, event: ServerSentEvent) -> GenerationChunk | None:
        chunk = self._client._stream_chunk(event.data, self._request_id)
        if chunk is None:
            self.done = True
        elif chunk.is_final:
            self.finished = True
        return chunk


class GenerationStream:
    """The chunks of a streamed generation; iterate it, and close it (or use ``with``).

    The request was answered 2xx before this object exists, so it is never retried: a
    failure from here on raises (a mid-stream ``error`` event, or APIConnectionError).
    """

    def __init__(self, response: httpx.Response, client: BaseClient) -> None:
        self.response = response
        self.request_id: str | None = response.headers.get("x-request-id")
        self._client = client
        self._iterator = self._iter_chunks()

    def __iter__(self) -> Iterator[GenerationChunk]:
        return self._iterator

    def __next__(self) -> GenerationChunk:
        return next(self._iterator)

    def __enter__(self) -> GenerationStream:
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

    def _iter_chunks(self) -> Iterator[GenerationChunk]:
        reader = _ChunkReader(self._client, self.request_id)
        try:
            for line in self.response.iter_lines():
                chunk = reader.feed(line)
                if chunk is not None:
                    yield chunk
                if reader.done:
                    return
            chunk = reader.flush()
            if chunk is not None:
                yield chunk
            reader.check_complete()
        except httpx.TransportError as exc:
            raise self._client._connection_error(exc) from exc
        finally:
            self.response.close()


class AsyncGenerationStream:
    """The async twin of GenerationStream: ``async for chunk in stream``."""

    def __init__(self, response: httpx.Response, client: BaseClient) -> None:
        self.response = response
        self.request_id: str | None = response.headers.get("x-request-id")
        self._client = client
        self._iterator = self._iter_chunks()

    def __aiter__(self) -> AsyncIterator[GenerationChunk]:
        return self._iterator

    async def __anext__(self) -> GenerationChunk:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncGenerationStream:
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

    async def _iter_chunks(self) -> AsyncIterator[GenerationChunk]:
        reader = _ChunkReader(self._client, self.request_id)
        try:
            async for line in self.response.aiter_lines():
                chunk = reader.feed(line)
                if chunk is not None:
                    yield chunk
                if reader.done:
                    return
            chunk = reader.flush()
            if chunk is not None:
                yield chunk
            reader.check_complete()
        except httpx.TransportError as exc:
            raise self._client._connection_error(exc) from exc
        finally:
            await self.response.aclose()
