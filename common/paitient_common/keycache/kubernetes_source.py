"""Keys, tenants, the pepper, the tiers and a deployment's access list from the Kubernetes API,
kept current by watches, with a read-through for what the watches have not delivered yet.

One implementation for the front door (no deployment: no access list) and every gateway.

- **Watch-fed.** One ``Informer`` per collection: the key Secrets (label
  ``paitient.ai/api-keys=true``), the pepper Secret and the tiers ConfigMap (each by name), all
  Tenants and, in a gateway, its own ModelDeployment. Any change is applied within one event: a
  revoked key, a suspension or a tier change reaches the directory as the API server sends it.
- **Read-through.** A key id the cache does not hold (a key used the instant ``keys create``
  returned) is looked up in its tenant's Secret once, through ``FreshReader``: one GET per
  tenant Secret at most every 0.25 s however many requests ask, four reads in flight at most,
  and an id still unknown after a read is refused for 5 s without another (a negative cache in
  the shared store when there is one, so every replica knows it; in-process otherwise).
  A client ID no cached Tenant has costs one Tenant LIST, shared and spaced the same way. What
  is read is merged into the watch-fed cache (newest resourceVersion wins), never kept aside.
- **Staleness.** ``stale_reason`` names a cache older than ``WatchSettings.stale_after`` (or not
  listed yet); the front door's ``/readyz`` and the gateway's ``/healthz/ready`` fail on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp

from paitient_common.cache_metrics import CacheCollector
from paitient_common.informer import Informer, WatchSettings
from paitient_common.keycache.directory import (
    Directory,
    Snapshot,
    parse_access,
    parse_key_secret,
    parse_pepper,
    parse_tenant,
    parse_tiers,
    snapshot_from_parts,
)
from paitient_common.kubeapi import KubeError, Obj
from paitient_common.kubeasync import AsyncKube, Query
from paitient_common.readthrough import Clock, FreshReader
from paitient_common.secrets import KEYS_LABEL, PEPPER_SECRET, TIERS_CONFIGMAP, keys_secret_name
from paitient_common.store.connection import Store
from paitient_common.store.health import StoreHealth
from paitient_common.store.negative import SharedNegativeCache
from paitient_common.tiers import DEFAULT_TIERS

log = logging.getLogger("paitient.keys")

TENANT = ("paitient.ai/v1alpha1", "Tenant")
MODEL_DEPLOYMENT = ("paitient.ai/v1alpha1", "ModelDeployment")
T = TypeVar("T")

# The bound on the whole read-through of one request: past it, the key is refused (401).
READ_THROUGH_BUDGET = 3.0
# How long a name a read did not find is refused without another read: a key id (60 random
# bits: a new key cannot have been asked for before it existed), and a client ID no Tenant has
# (shorter: a tenant may be created any moment).
UNKNOWN_KEY_SECONDS = 5.0
UNKNOWN_CLIENT_SECONDS = 1.0


def by_name(name: str) -> str:
    return f"metadata.name={name}"


class KubernetesKeySource:
    """Watch-fed caches feeding a ``Directory``; ``run`` until cancelled."""

    def __init__(
        self,
        kubeconfig: str | None,
        system_namespace: str,
        namespace: str = "",
        deployment: str = "",
        settings: WatchSettings | None = None,
        store: Store | None = None,
        store_health: StoreHealth | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.store, self.store_health = store, store_health
        self.system_namespace = system_namespace
        self.namespace = namespace
        self.deployment = deployment
        self.settings = settings or WatchSettings()
        self.informers: dict[str, Informer[Any]] = {}
        self.read_through: KeyReadThrough | None = None

    def queries(self) -> dict[str, Query]:
        """What is watched, by cache name (pure)."""
        system = self.system_namespace
        queries = {
            "keys": Query("v1", "Secret", system, label_selector=f"{KEYS_LABEL}=true"),
            "pepper": Query("v1", "Secret", system, field_selector=by_name(PEPPER_SECRET)),
            "tiers": Query("v1", "ConfigMap", system, field_selector=by_name(TIERS_CONFIGMAP)),
            "tenants": Query(*TENANT),
        }
        if self.deployment:  # the front door serves no one deployment: no access list to read
            queries["deployment"] = Query(
                *MODEL_DEPLOYMENT, self.namespace, field_selector=by_name(self.deployment)
            )
        return queries

    async def run(self, directory: Directory) -> None:
        kube = await AsyncKube.from_kubeconfig(self.kubeconfig)
        try:
            publish = self._publisher(directory)
            parsers: dict[str, Callable[[Obj], Any]] = {
                "keys": parse_key_secret,
                "pepper": parse_pepper,
                "tiers": parse_tiers,
                "tenants": parse_tenant,
                "deployment": parse_access,
            }
            self.informers = {
                name: Informer(name, kube, query, parsers[name], publish, self.settings)
                for name, query in self.queries().items()
            }
            self.read_through = KeyReadThrough(
                kube,
                self.system_namespace,
                self.informers,
                directory,
                store=self.store,
                store_health=self.store_health,
            )
            directory.resolver = self.read_through
            directory.staleness = self.stale_reason
            await asyncio.gather(*(informer.run() for informer in self.informers.values()))
        finally:
            await kube.close()

    def _publisher(self, directory: Directory) -> Callable[[], None]:
        def publish() -> None:
            # Nothing is published before every cache has its first list: a directory that
            # is "loaded" has seen every key, tenant and tier at least once.
            if self.informers and all(i.synced for i in self.informers.values()):
                directory.apply(self.snapshot())

        return publish

    def snapshot(self) -> Snapshot:
        inf = self.informers
        deployment = inf.get("deployment")
        return snapshot_from_parts(
            pepper=_only(inf["pepper"].values(), b""),
            key_records=inf["keys"].values(),
            tenants=inf["tenants"].values(),
            allowed_namespaces=_only(deployment.values(), frozenset())
            if deployment
            else frozenset(),
            tiers=_only(inf["tiers"].values(), dict(DEFAULT_TIERS)),
        )

    def collector(self) -> CacheCollector:
        """The caches' Prometheus series (restarts, age, size, read-throughs)."""
        return CacheCollector(
            lambda: list(self.informers.values()),
            lambda: dict(self.read_through.outcomes) if self.read_through else {},
        )

    def stale_reason(self) -> str | None:
        for informer in self.informers.values():
            if informer.stale():
                age = informer.age()
                state = "not listed yet" if age is None else f"{age:.0f} s old"
                return (
                    f"the {informer.name} cache is {state} (bound "
                    f"{self.settings.stale_after:.0f} s): its watch is being restarted"
                )
        return None


def _only(values: list[T], default: T) -> T:
    return values[0] if values else default


class KeyReadThrough:
    """Reads a key id or tenant the caches lack through from the API; see the module doc."""

    def __init__(
        self,
        kube: AsyncKube,
        system_namespace: str,
        informers: dict[str, Informer[Any]],
        directory: Directory,
        reader: FreshReader | None = None,
        store: Store | None = None,
        store_health: StoreHealth | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.kube = kube
        self.system_namespace = system_namespace
        self.keys = informers["keys"]
        self.tenants = informers["tenants"]
        self.store = directory.keys
        self.reader = reader or FreshReader()
        self.unknown_keys = SharedNegativeCache(
            "key", UNKNOWN_KEY_SECONDS, store, store_health, clock
        )
        self.unknown_clients = SharedNegativeCache(
            "client", UNKNOWN_CLIENT_SECONDS, store, store_health, clock
        )
        # (what was read, outcome) -> count: found, absent, refused_from_memory, failed
        self.outcomes: Counter[tuple[str, str]] = Counter()

    async def resolve(self, key_id: str, client_id: str) -> bool:
        try:
            async with asyncio.timeout(READ_THROUGH_BUDGET):
                return await self._resolve(key_id, client_id)
        except (TimeoutError, KubeError, aiohttp.ClientError, OSError) as exc:
            self.outcomes["api", "failed"] += 1
            log.warning("reading a key through from the API failed: %s", type(exc).__name__)
            return False

    async def _resolve(self, key_id: str, client_id: str) -> bool:
        record = self.store.record(key_id)
        if record is not None:  # the key is cached, its tenant is not (yet)
            if self.store.tenant(record.tenant) is not None:
                return False  # nothing missing: the failure stands
            name = record.tenant
            await self.reader.read(f"tenant/{name}", lambda: self._get_tenant(name))
            return self._count("tenant", self.store.tenant(name) is not None)
        if await self.unknown_keys.contains(key_id):
            self.outcomes["key", "refused_from_memory"] += 1
            return False
        tenant = self.store.tenant_by_client_id(client_id)
        if tenant is None:
            if await self.unknown_clients.contains(client_id):
                self.outcomes["tenants", "refused_from_memory"] += 1
                return False
            await self.reader.read("tenants", self._list_tenants)
            tenant = self.store.tenant_by_client_id(client_id)
            if not self._count("tenants", tenant is not None):
                await self.unknown_clients.add(client_id)
                return False
        assert tenant is not None
        name = tenant.name
        await self.reader.read(f"keys/{name}", lambda: self._get_key_secret(name))
        if not self._count("key", self.store.record(key_id) is not None):
            await self.unknown_keys.add(key_id)
            return False
        return True

    def _count(self, what: str, found: bool) -> bool:
        self.outcomes[what, "found" if found else "absent"] += 1
        return found

    async def _get_key_secret(self, tenant: str) -> None:
        secret = await self.kube.get(
            "v1", "Secret", keys_secret_name(tenant), namespace=self.system_namespace
        )
        if (
            secret is not None
            and (secret["metadata"].get("labels") or {}).get(KEYS_LABEL) == "true"
        ):
            self.keys.merge(secret)

    async def _get_tenant(self, name: str) -> None:
        tenant = await self.kube.get(*TENANT, name)
        if tenant is not None:
            self.tenants.merge(tenant)

    async def _list_tenants(self) -> None:
        items, _ = await self.kube.list(Query(*TENANT))
        self.tenants.merge(*items)
