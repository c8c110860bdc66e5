"""The front door's real application on 127.0.0.1, in this process, for tests of its frame
(middleware) and handlers without a cluster.

What stands in: the Kubernetes API, by ``InMemoryCluster`` (the few ModelDeployment reads the
handlers make, as plain dicts), and a deployment's gateway, by any aiohttp application the test
starts with ``serve(app, tls=True)``: HTTPS with a certificate for 127.0.0.1 from a test CA the
front door trusts (it sends prompts over verified TLS only). Keys are real: a ``KeyStore`` with
one key per tenant.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from paitient_api.app import create_app
from paitient_api.door import FrontDoor
from paitient_api.gateway_client import GatewayTrust
from paitient_api.replicas.router import ReplicaRouter
from paitient_api.routing import GatewayRoute
from paitient_common.apikeys import KeyRecord, KeyStore, TenantInfo, generate_api_key, new_record
from paitient_common.keycache.directory import Directory
from paitient_common.kubeapi import KubeError
from paitient_common.store.connection import Store
from paitient_common.store.health import StoreHealth
from paitient_common.tls import server_context
from paitient_operator.certificates import x509

PEPPER = b"p" * 32
NOW = datetime.now(UTC)
GATEWAY_CA = x509.new_authority("front-door tests' gateway CA", timedelta(days=1), NOW)
GATEWAY_CERT = x509.issue(GATEWAY_CA, ["127.0.0.1"], timedelta(hours=12), NOW)
ACME = TenantInfo("acme", "acme-clinic", "tenant-acme", "standard")
FROZEN = TenantInfo("frozen", "frozen-clinic", "tenant-frozen", "standard", suspended=True)


@dataclass
class InMemoryCluster:
    """ModelDeployments by (namespace, name): what ``Kube.get``, ``list`` and ``create`` do."""

    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)  # Tenants by name
    creates: int = 0
    patches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, namespace: str, name: str, phase: str = "Ready", model: str = "org/m") -> None:
        self.objects[(namespace, name)] = {
            "apiVersion": "paitient.ai/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"model": {"name": model}},
            "status": {"phase": phase},
        }

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        if (api_version, kind) == ("paitient.ai/v1alpha1", "Tenant"):
            return self.tenants.get(name)
        assert (api_version, kind) == ("paitient.ai/v1alpha1", "ModelDeployment")
        return self.objects.get((namespace or "", name))

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[Any]:
        return [o for (ns, _), o in self.objects.items() if ns == namespace]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.creates += 1
        meta = obj["metadata"]
        where = (meta["namespace"], meta["name"])
        if where in self.objects:
            raise KubeError(
                409, "AlreadyExists", f"modeldeployments {meta['name']!r} already exists"
            )
        self.objects[where] = obj
        return obj

    def patch(
        self, api_version: str, kind: str, name: str, patch: dict[str, Any], namespace: str = ""
    ) -> dict[str, Any]:
        """A merge patch of metadata.annotations (what the front door writes: a wake token)."""
        obj = self.objects.get((namespace, name))
        if obj is None:
            raise KubeError(404, "NotFound", f"modeldeployments {name!r} not found")
        self.patches.append((namespace, name, patch))
        annotations = patch.get("metadata", {}).get("annotations", {})
        obj.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
        return obj


@dataclass
class Keys:
    """A real key store: one good key per tenant, plus an expired and a revoked one of acme's."""

    store: KeyStore
    plaintext: dict[str, str]

    def headers(self, which: str = "acme", client_id: str = "acme-clinic") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.plaintext[which]}", "X-Client-ID": client_id}


def make_keys() -> Keys:
    store = KeyStore(PEPPER)
    records: list[KeyRecord] = []
    plaintext = {}
    for which, tenant, extra in (
        ("acme", ACME, {}),
        ("frozen", FROZEN, {}),
        ("expired", ACME, {"expires": NOW - timedelta(days=1)}),
        ("revoked", ACME, {"revoked": NOW - timedelta(days=1)}),
    ):
        key = generate_api_key()
        record = new_record(key, PEPPER, tenant.name, tenant.client_id, NOW - timedelta(days=2))
        records.append(record.model_copy(update=extra))
        plaintext[which] = key.plaintext
    store.replace_records(records)
    store.replace_tenants([ACME, FROZEN])
    return Keys(store, plaintext)


@contextlib.asynccontextmanager
async def serve(
    app: web.Application, tls: bool = False, certificate: x509.KeyPair = GATEWAY_CERT
) -> AsyncIterator[str]:
    """``app`` on a free port of 127.0.0.1 (over HTTPS with ``tls``, presenting
    ``certificate``); yields its base URL."""
    server = TestServer(app, host="127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        context = None
        if tls:
            cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert.write_text(certificate.cert_pem)
            key.write_text(certificate.key_pem)
            context = server_context(cert, key)
        await server.start_server(ssl=context)
        try:
            yield str(server.make_url("")).rstrip("/")
        finally:
            await server.close()


@contextlib.asynccontextmanager
async def front_door(
    cluster: InMemoryCluster | None = None,
    gateway_url: str = "http://127.0.0.1:9",
    extra_routes: list[web.RouteDef] | None = None,
    keys: Keys | None = None,
    store: tuple[Store, StoreHealth] | None = None,
    hold_seconds: float = 300.0,
    replicas: ReplicaRouter | None = None,
) -> AsyncIterator[tuple[str, Keys]]:
    """The front door's app (``create_app``), its base URL and its keys; ``keys`` and a
    ``store`` given, one of several replicas of one front door; ``replicas``: its replica
    picker (none: every request to the route ``gateway_url`` gives)."""
    keys = keys or make_keys()
    callers = Directory()
    callers.keys, callers.loaded = keys.store, True  # no watch: the keys are all there is
    trust = GatewayTrust("paitient-system")
    trust.update(GATEWAY_CA.cert_pem)
    door = FrontDoor(
        kube=cluster or InMemoryCluster(),  # type: ignore[arg-type]
        callers=callers,
        route=replicas.routes if replicas else GatewayRoute(gateway_url),
        trust=trust,
        store=store[0] if store else None,
        store_health=store[1] if store else None,
        hold_seconds=hold_seconds,
        replicas=replicas,
    )
    door.holds.poll_seconds = 0.02
    app = create_app(door)
    app.router.add_routes(extra_routes or [])
    async with serve(app) as url:
        yield url, keys


async def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], Any]:
    """One request; (status, headers (case-insensitive), parsed JSON body or text)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers or {}) as response,
    ):
        text = await response.text()
        try:
            parsed: Any = await response.json(content_type=None)
        except ValueError:
            parsed = text
        return response.status, CIMultiDict(response.headers), parsed
