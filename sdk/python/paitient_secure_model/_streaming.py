"""The synchronous streams of generation and chat chunks, each over one 2xx response."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from ._chunks import ChatChunks, ChunkReader, Chunks, GenerationChunks, T
from ._error_mapping import Redact, connection_error
from ._types import ChatChunk, GenerationChunk

__all__ = ["ChatStream", "GenerationStream"]

_StreamT = TypeVar("_StreamT", bound="_Stream[Any]")


class _Stream(Generic[T]):
    """A stream of chunks: ``for chunk in stream``, then close it (or use ``with``).

    The request was answered 2xx before this object exists, so it is never retried: a
    failure from here on raises (a mid-stream ``error`` event, or APIConnectionError).
    """

    def __init__(self, response: httpx.Response, redact: Redact) -> None:
        self.response = response
        self.request_id: str | None = response.headers.get("x-request-id")
        self._redact = redact
        self._iterator: Iterator[T] = self._iter_chunks()

    def _new_chunks(self) -> Chunks[T]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[T]:
        return self._iterator

    def __next__(self) -> T:
        return self._iterator.__next__()

    def __enter__(self: _StreamT) -> _StreamT:
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
        reader = ChunkReader(self.request_id, self._new_chunks(), self._redact)
        try:
            for line in self.response.iter_lines():
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
            self.response.close()


class GenerationStream(_Stream[GenerationChunk]):
    """The chunks of a streamed generation: ``for chunk in stream``, then close it (or
    use ``with``). The last chunk carries ``finish_reason`` and ``usage``.

    The request was answered 2xx before this object exists, so it is never retried: a
    failure from here on raises (a mid-stream ``error`` event, or APIConnectionError).
    """

    def _new_chunks(self) -> Chunks[GenerationChunk]:
        return GenerationChunks()


class ChatStream(_Stream[ChatChunk]):
    """The chunks of a streamed chat answer: ``content`` pieces, then one last chunk with
    ``finish_reason`` and ``usage``. ``for chunk in stream``, then close it (or use
    ``with``); never retried once it exists."""

    def _new_chunks(self) -> Chunks[ChatChunk]:
        return ChatChunks()
