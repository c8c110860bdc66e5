"""A Kubernetes-protocol HTTP server on 127.0.0.1 whose watches do what a test scripts: answer
``410 Gone``, stall without a byte, or stream events and end. The real API server does the first
two only after an etcd compaction or a network fault; the integration tests exercise the real
one through a proxy, this exercises the informer's handling of each case exactly once.

One collection (Secrets in ``ns``) is served: a LIST answers ``items`` at the current
resourceVersion, and each WATCH takes the next step from ``steps`` (default: stream nothing and
end when ``timeoutSeconds`` passes). A GET of one Secret waits for ``gate`` to open (a slow API
server: ``in_flight`` counts the GETs waiting, ``most_in_flight`` the most at once); Tenants are
listed from ``tenants``. Every request is recorded with the event loop's time in ``times``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

PATH = "/api/v1/namespaces/ns/secrets"
TENANTS_PATH = "/apis/paitient.ai/v1alpha1/tenants"


@dataclass
class Step:
    """What one watch connection does: ``gone``, ``stall``, or send ``events`` then end."""

    kind: str
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ScriptedApi:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 100
    steps: deque[Step] = field(default_factory=deque)
    requests: list[str] = field(default_factory=list)  # "list", "watch from <rv>", "get <name>"
    times: list[float] = field(default_factory=list)  # the loop's time of each request
    tenants: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # GETs wait until it is set
    in_flight: int = 0
    most_in_flight: int = 0
    runner: web.AppRunner | None = None
    port: int = 0

    def put(self, name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
        """Store a new version of ``name`` (as a write would)."""
        self.items[name] = self.next_version(name, data)
        return self.items[name]

    def next_version(self, name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
        """The object a later write would make, for a scripted event (the list does not see it)."""
        self.version += 1
        return {
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(self.version)},
            "data": data or {},
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH, self._collection)
        app.router.add_get(PATH + "/{name}", self._get)
        app.router.add_get(TENANTS_PATH, self._tenants)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)  # stalled handlers are cut off
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "scripted.kubeconfig"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "c", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}
                    ],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        return path

    def _record(self, what: str) -> None:
        self.requests.append(what)
        self.times.append(asyncio.get_running_loop().time())

    async def _tenants(self, request: web.Request) -> web.Response:
        self._record("list tenants")
        return web.json_response(
            {"metadata": {"resourceVersion": str(self.version)}, "items": self.tenants}
        )

    async def _get(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self._record(f"get {name}")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        if name not in self.items:
            return web.json_response(
                {"kind": "Status", "code": 404, "reason": "NotFound"}, status=404
            )
        return web.json_response(self.items[name])

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") != "true":
            self._record("list")
            return web.json_response(
                {
                    "metadata": {"resourceVersion": str(self.version)},
                    "items": list(self.items.values()),
                }
            )
        self._record(f"watch from {request.query['resourceVersion']}")
        step = self.steps.popleft() if self.steps else Step("quiet")
        response = web.StreamResponse()
        await response.prepare(request)
        if step.kind == "gone":
            status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
        elif step.kind == "stall":
            await asyncio.sleep(3600)  # bytes never come; the client must give up
        else:
            for event in step.events:
                await response.write(json.dumps(event).encode() + b"\n")
            if step.kind == "quiet":
                await asyncio.sleep(float(request.query["timeoutSeconds"]))
        with contextlib.suppress(ConnectionError):  # the client may have gone first
            await response.write_eof()
        return response
