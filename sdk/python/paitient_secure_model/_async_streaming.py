"""The asynchronous streams of generation and chat chunks, each over one 2xx response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from ._chunks import ChatChunks, ChunkReader, Chunks, GenerationChunks, T
from ._error_mapping import Redact, connection_error
from ._types import ChatChunk, GenerationChunk

__all__ = ["AsyncChatStream", "AsyncGenerationStream"]

_AsyncStreamT = TypeVar("_AsyncStreamT", bound="_AsyncStream[Any]")


class _AsyncStream(Generic[T]):
    """A stream of chunks: ``async for chunk in stream``, then close it (or use ``async with``).

    The request was answered 2xx before this object exists, so it is never retried: a
    failure from here on raises (a mid-stream ``error`` event, or APIConnectionError).
    """

    def __init__(self, response: httpx.Response, redact: Redact) -> None:
        self.response = response
        self.request_id: str | None = response.headers.get("x-request-id")
        self._redact = redact
        self._iterator: AsyncIterator[T] = self._iter_chunks()

    def _new_chunks(self) -> Chunks[T]:
        raise NotImplementedError

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterator

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def __aenter__(self: _AsyncStreamT) -> _AsyncStreamT:
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
        reader = ChunkReader(self.request_id, self._new_chunks(), self._redact)
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
            raise connection_error(exc, self._redact) from exc
        finally:
            await self.response.aclose()


class AsyncGenerationStream(_AsyncStream[GenerationChunk]):
    """The chunks of a streamed generation: ``async for chunk in stream``, then close it (or
    use ``async with``). The last chunk carries ``finish_reason`` and ``usage``.

    The request was answered 2xx before this object exists, so it is never retried: a
    failure from here on raises (a mid-stream ``error`` event, or APIConnectionError).
    """

    def _new_chunks(self) -> Chunks[GenerationChunk]:
        return GenerationChunks()


class AsyncChatStream(_AsyncStream[ChatChunk]):
    """The chunks of a streamed chat answer: ``content`` pieces, then one last chunk with
    ``finish_reason`` and ``usage``. ``async for chunk in stream``, then close it (or use
    ``async with``); never retried once it exists."""

    def _new_chunks(self) -> Chunks[ChatChunk]:
        return ChatChunks()
