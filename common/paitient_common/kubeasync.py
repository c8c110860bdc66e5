"""The asyncio door to the Kubernetes API for the watch-fed caches: GET, LIST and WATCH of dicts.

The same paths as ``kubeapi`` (``resource_path``), over the official client's asyncio transport
(``kubernetes.aio``: kubeconfig or in-cluster credentials, TLS, token refresh), so the front door
and every gateway hold their watches open on their own event loop, with no thread per watch and
cancellation that stops a watch at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from paitient_common.kubeapi import KubeError, Obj, resource_path

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


class AsyncKube:
    """GET, LIST and WATCH over one ``kubernetes.aio`` ApiClient; ``close`` when done."""

    def __init__(self, api: Any) -> None:
        self.api = api

    @classmethod
    async def from_kubeconfig(cls, path: str | None = None) -> AsyncKube:
        """Load ``path``, else ``$KUBECONFIG``/``~/.kube/config``, else the in-cluster config
        (whose token the client re-reads as the kubelet rotates it)."""
        configuration = aio_client.Configuration()
        try:
            await aio_config.load_kube_config(config_file=path, client_configuration=configuration)
        except aio_config.ConfigException:
            if path:
                raise
            aio_config.load_incluster_config(client_configuration=configuration)
        return cls(aio_client.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()

    async def _open(self, path: str, params: dict[str, str], timeout: aiohttp.ClientTimeout) -> Any:
        """Send a GET; the open ``aiohttp.ClientResponse``, or ``KubeError`` for an error status."""
        if params:
            path = f"{path}?{urlencode(params)}"
        method, url, headers, _, _ = await self.api.param_serialize(
            "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        response = (
            await self.api.call_api(method, url, headers, _request_timeout=timeout)
        ).response
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
