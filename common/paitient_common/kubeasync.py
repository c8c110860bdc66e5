"""The asyncio door to the Kubernetes API for the watch-fed caches: GET, LIST and WATCH of dicts.

The same paths and the same credentials as ``kubeapi`` (``resource_path``, ``load_configuration``:
kubeconfig or in-cluster, client certificates, a bearer token re-read as the kubelet rotates it),
sent over one ``aiohttp`` session, so the front door and every gateway hold their watches open on
their own event loop, with no thread per watch and cancellation that stops a watch at once.

Why not the official client's asyncio copy (``kubernetes.aio``)? It duplicates every generated
model and API (68 MB in each component image) to send three kinds of GET, which need a URL, a
TLS context and one header.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

import aiohttp
from kubernetes import client

from paitient_common.kubeapi import KubeError, Obj, load_configuration, resource_path

# A GET or LIST that takes longer than this is a failure to retry, not a wait to sit through.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)

# The most one watch event may take. The API server keeps an object of at most 1.5 MiB (etcd's
# default --max-request-bytes) and sends it as JSON, where a byte may grow to six (``\u0001``):
# 9 MiB is the most one event can be (a full Secret is ~1.4 MiB: 1 MiB of data in base64). A line
# longer than this bound is a broken stream, not an event worth more memory.
MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
# A read returns what has arrived, up to this: a small event is passed on at once, a large one is
# gathered in a few reads.
READ_CHUNK_BYTES: Final = 256 * 1024


@dataclass(frozen=True)
class Query:
    """One collection to list and watch: a kind, optionally a namespace and selectors."""

    api_version: str
    kind: str
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None

    @property
    def path(self) -> str:
        return resource_path(self.api_version, self.kind, self.namespace)

    def params(self) -> dict[str, str]:
        params = {}
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        return params

    def describe(self) -> str:
        """``Secret paitient-system label=…``: for logs and metric labels (no secrets in it)."""
        parts = [self.kind, self.namespace or "(cluster)"]
        parts += [f"label {self.label_selector}"] if self.label_selector else []
        parts += [f"field {self.field_selector}"] if self.field_selector else []
        return " ".join(parts)


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``."""

    type: str
    object: Obj


def parse_watch_line(line: bytes) -> WatchEvent | None:
    """The event on one line of a watch stream (pure); None for a blank line.

    An ``ERROR`` event (410 Gone when the resourceVersion is too old, say) is raised as the
    ``KubeError`` it carries; a line that is not an event raises ``ValueError``.
    """
    if not line.strip():
        return None
    event = json.loads(line)
    if not isinstance(event, dict) or "type" not in event or "object" not in event:
        raise ValueError("not a watch event")
    obj = event["object"] if isinstance(event["object"], dict) else {}
    if event["type"] == "ERROR":
        raise KubeError(
            int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message", ""))
        )
    return WatchEvent(str(event["type"]), obj)


def parse_watch_lines(lines: Iterable[bytes]) -> Iterator[WatchEvent]:
    """The events on ``lines`` (pure), as ``parse_watch_line`` reads each."""
    for line in lines:
        if (event := parse_watch_line(line)) is not None:
            yield event


class EventTooLarge(ValueError):
    """A watch line ran past ``MAX_EVENT_BYTES`` without ending: the stream is broken."""


class LineSplitter:
    """Bytes as they arrive -> whole lines, without their ``\\n`` or ``\\r\\n`` (pure, no I/O).

    Why not ``StreamReader.readline``: aiohttp refuses a line over its buffer limit (512 KiB:
    ``LineTooLong``), and one Secret is up to ~1.4 MiB on a watch. ``feed`` returns the lines a
    chunk completes and keeps the rest; ``end`` returns the last line of a stream that did not end
    with a newline. Blank lines are dropped. A line longer than ``limit`` bytes raises
    ``EventTooLarge`` as soon as it passes the bound, so memory stays bounded whatever is sent.
    """

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self.limit = limit
        self._partial = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        lines, start = [], 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            lines.append(self._take(chunk, start, newline))
            start = newline + 1
        self._keep(chunk, start, len(chunk))
        return [line for line in lines if line]

    def end(self) -> list[bytes]:
        line = self._take(b"", 0, 0)
        return [line] if line else []

    def _keep(self, chunk: bytes, start: int, stop: int) -> None:
        self._check(len(self._partial) + stop - start)
        self._partial += chunk[start:stop]

    def _take(self, chunk: bytes, start: int, stop: int) -> bytes:
        self._check(len(self._partial) + stop - start)
        if self._partial:
            self._partial += chunk[start:stop]
            line = bytes(self._partial)
            self._partial.clear()
        else:  # the whole line is in this chunk: no copy through the buffer
            line = chunk[start:stop]
        return line[:-1] if line.endswith(b"\r") else line

    def _check(self, size: int) -> None:
        if size > self.limit:
            self._partial.clear()
            raise EventTooLarge(
                f"a watch event ran past {self.limit} bytes without ending, more than the API "
                "server can send: the stream is broken"
            )


def ssl_context(configuration: client.Configuration) -> ssl.SSLContext | bool:
    """The TLS settings of a client configuration: its CA (else the system's), its client
    certificate if any; ``False`` (no verification) only where the kubeconfig says
    ``insecure-skip-tls-verify``."""
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context


def authorization(configuration: client.Configuration) -> str | None:
    """The ``Authorization`` header value, refreshed first if the configuration refreshes its
    token (in-cluster: the projected token file; kubeconfig: an exec plugin)."""
    bearer = configuration.auth_settings().get("BearerToken")
    return str(bearer["value"]) if bearer and bearer.get("value") else None


class AsyncKube:
    """GET, LIST and WATCH over one ``aiohttp`` session; ``close`` when done."""

    def __init__(
        self, configuration: client.Configuration | None, max_event_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        self.configuration = configuration
        self.max_event_bytes = max_event_bytes
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def from_kubeconfig(cls, path: str | None = None) -> AsyncKube:
        """Load ``path``, else ``$KUBECONFIG``/``~/.kube/config``, else the in-cluster config."""
        return cls(await asyncio.to_thread(load_configuration, path))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_for(self, configuration: client.Configuration) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=ssl_context(configuration))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def _open(
        self, path: str, params: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """Send a GET; the open response, or ``KubeError`` for an error status."""
        if self.configuration is None:
            raise RuntimeError("this AsyncKube has no configuration")
        configuration = self.configuration
        headers = {"Accept": "application/json"}
        # A token refresh may read a file or run an exec plugin: not on the event loop.
        if (token := await asyncio.to_thread(authorization, configuration)) is not None:
            headers["Authorization"] = token
        url = configuration.host.rstrip("/") + path + (f"?{urlencode(params)}" if params else "")
        response = await self._session_for(configuration).get(url, headers=headers, timeout=timeout)
        if response.status >= 400:
            try:
                raw = await response.read()
            finally:
                response.release()
            raise _error(response.status, raw)
        return response

    async def _get_json(self, path: str, params: dict[str, str]) -> Obj:
        response = await self._open(path, params, REQUEST_TIMEOUT)
        try:
            payload: Obj = json.loads(await response.read())
        finally:
            response.release()
        return payload

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        """The object, or None when it does not exist."""
        try:
            return await self._get_json(resource_path(api_version, kind, namespace, name), {})
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, query: Query) -> tuple[list[Obj], str]:
        """(items, the list's resourceVersion): a consistent read, the point a watch resumes from."""
        payload = await self._get_json(query.path, query.params())
        version = str((payload.get("metadata") or {}).get("resourceVersion") or "")
        return list(payload.get("items") or []), version

    async def watch(
        self, query: Query, resource_version: str, timeout_seconds: int, read_timeout: float
    ) -> AsyncGenerator[WatchEvent, None]:
        """Events after ``resource_version`` until the server ends the watch (``timeoutSeconds``).

        ``read_timeout`` bounds the silence between two reads: a connection that stalls without
        closing raises ``TimeoutError`` instead of waiting forever. Bookmarks are asked for, so a
        quiet collection still moves the resourceVersion on. An event of any size the API server
        can send is read (``LineSplitter``); a line past ``max_event_bytes`` raises
        ``EventTooLarge``.
        """
        params = {
            **query.params(),
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=read_timeout)
        response = await self._open(query.path, params, timeout)
        lines = LineSplitter(self.max_event_bytes)
        try:
            async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                for event in parse_watch_lines(lines.feed(chunk)):
                    yield event
            for event in parse_watch_lines(lines.end()):
                yield event
        finally:
            response.close()


def _error(status: int, raw: bytes) -> KubeError:
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    return KubeError(status, str(payload.get("reason", "")), str(payload.get("message", "")))
