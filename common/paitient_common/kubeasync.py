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
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from kubernetes import client

from paitient_common.kubeapi import KubeError, Obj, load_configuration, resource_path

# A GET or LIST that takes longer than this is a failure to retry, not a wait to sit through.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


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

    def __init__(self, configuration: client.Configuration | None) -> None:
        self.configuration = configuration
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

        ``read_timeout`` bounds the silence between two lines: a connection that stalls without
        closing raises ``TimeoutError`` instead of waiting forever. Bookmarks are asked for, so a
        quiet collection still moves the resourceVersion on.
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
        try:
            while line := await response.content.readline():
                event = parse_watch_line(line)
                if event is not None:
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
