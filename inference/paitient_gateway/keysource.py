"""Where the gateway learns keys, tenants and who may call this deployment.

Both sources build one ``Snapshot`` and hand it to ``Directory.apply``, which swaps it in
atomically: the ``KeyStore`` (shared with the front door) for verification, plus what only the
gateway needs (tiers, usage limits and the deployment's access list).

- ``KubernetesKeySource`` polls the API every ~2 s, so a new, revoked or suspended key reaches
  every replica within one poll plus one request (well under 10 s). Polling, not watching: five
  small lists every two seconds are cheap, and a poll cannot silently stall the way a dropped
  watch can.
- ``FileKeySource`` re-reads a JSON file when it changes, for local runs, tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from paitient_common.apikeys import KeyRecord, KeyStore, TenantInfo, records_from_secret_data
from paitient_common.kubeapi import Kube
from paitient_common.secrets import KEYS_LABEL, PEPPER_KEY, PEPPER_SECRET, TIERS_CONFIGMAP
from paitient_common.tiers import DEFAULT_TIERS, Tier

log = logging.getLogger("paitient.gateway.keys")

TENANT = ("paitient.ai/v1alpha1", "Tenant")
MODEL_DEPLOYMENT = ("paitient.ai/v1alpha1", "ModelDeployment")


@dataclass(frozen=True)
class TenantUsage:
    """A tenant's usage limit and cluster-wide usage as the operator last reported them."""

    usage_limit: int | None = None
    current_usage: int = 0
    period_start: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything a source read in one go."""

    pepper: bytes
    records: list[KeyRecord]
    tenants: list[TenantInfo]
    usage: dict[str, TenantUsage] = field(default_factory=dict)
    allowed_namespaces: frozenset[str] = frozenset()
    tiers: dict[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))


class Directory:
    """What the gateway knows of callers; ``loaded`` turns true with the first snapshot."""

    def __init__(self) -> None:
        self.keys = KeyStore()
        self.usage: dict[str, TenantUsage] = {}
        self.allowed_namespaces: frozenset[str] = frozenset()
        self.tiers: dict[str, Tier] = dict(DEFAULT_TIERS)
        self.loaded = False

    def apply(self, snap: Snapshot) -> None:
        if snap.pepper:  # raises ValueError for a pepper of the wrong size: the last one stays
            self.keys.set_pepper(snap.pepper)
        self.keys.replace_records(snap.records)
        self.keys.replace_tenants(snap.tenants)
        self.usage = dict(snap.usage)
        self.allowed_namespaces = snap.allowed_namespaces
        self.tiers = dict(snap.tiers)
        self.loaded = self.keys.ready

    def tier(self, name: str) -> Tier:
        return self.tiers.get(name) or self.tiers.get("standard") or DEFAULT_TIERS["standard"]


class KeySource(Protocol):
    async def run(self, directory: Directory) -> None: ...


# -- parsing (pure) ------------------------------------------------------------------------------


def _tenant_from_object(obj: Mapping[str, Any]) -> tuple[TenantInfo, TenantUsage] | None:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    status = obj.get("status") or {}
    name, client_id = meta.get("name"), spec.get("clientId")
    if not name or not client_id:
        return None
    namespace = status.get("namespace") or spec.get("namespace") or f"tenant-{name}"
    info = TenantInfo(
        name=name,
        client_id=client_id,
        namespace=namespace,
        tier=spec.get("tier") or "standard",
        suspended=bool(spec.get("suspended")),
    )
    usage = TenantUsage(
        usage_limit=status.get("usageLimit", spec.get("usageLimitOverride")),
        current_usage=int(status.get("currentUsage") or 0),
        period_start=status.get("periodStart"),
    )
    return info, usage


def _tiers_from_data(data: Mapping[str, str] | None) -> dict[str, Tier]:
    tiers = dict(DEFAULT_TIERS)
    for name, text in (data or {}).items():
        try:
            tiers[name] = Tier.model_validate_json(text)
        except ValidationError:
            log.warning("tier %s in the tiers ConfigMap does not parse; ignored", name)
    return tiers


def snapshot_from_objects(
    key_secrets: Sequence[Mapping[str, Any]],
    pepper_secret: Mapping[str, Any] | None,
    tenants: Sequence[Mapping[str, Any]],
    deployment: Mapping[str, Any] | None,
    tiers_configmap: Mapping[str, Any] | None = None,
) -> Snapshot:
    """A snapshot from the API objects, as plain dicts."""
    pepper_b64 = ((pepper_secret or {}).get("data") or {}).get(PEPPER_KEY, "")
    parsed = [p for p in (_tenant_from_object(t) for t in tenants) if p is not None]
    access = ((deployment or {}).get("spec") or {}).get("access") or {}
    return Snapshot(
        pepper=base64.b64decode(pepper_b64) if pepper_b64 else b"",
        records=[r for s in key_secrets for r in records_from_secret_data(s.get("data"))],
        tenants=[info for info, _ in parsed],
        usage={info.name: usage for info, usage in parsed},
        allowed_namespaces=frozenset(access.get("allowedNamespaces") or ()),
        tiers=_tiers_from_data((tiers_configmap or {}).get("data")),
    )


def snapshot_from_file_data(data: Mapping[str, Any]) -> Snapshot:
    """The keys-file format: ``{"pepper": b64, "records": [KeyRecord], "tenants": [...],
    "allowedNamespaces": [...], "tiers": {name: Tier}}``; tenants are
    ``{"name", "clientId", "namespace", "tier", "suspended", "usageLimit", "currentUsage",
    "periodStart"}``."""
    tenants, usage = [], {}
    for t in data.get("tenants") or []:
        info = TenantInfo(
            name=t["name"],
            client_id=t["clientId"],
            namespace=t.get("namespace") or f"tenant-{t['name']}",
            tier=t.get("tier") or "standard",
            suspended=bool(t.get("suspended")),
        )
        tenants.append(info)
        usage[info.name] = TenantUsage(
            usage_limit=t.get("usageLimit"),
            current_usage=int(t.get("currentUsage") or 0),
            period_start=t.get("periodStart"),
        )
    tiers = dict(DEFAULT_TIERS)
    tiers.update({k: Tier.model_validate(v) for k, v in (data.get("tiers") or {}).items()})
    return Snapshot(
        pepper=base64.b64decode(data.get("pepper") or ""),
        records=[KeyRecord.model_validate(r) for r in data.get("records") or []],
        tenants=tenants,
        usage=usage,
        allowed_namespaces=frozenset(data.get("allowedNamespaces") or ()),
        tiers=tiers,
    )


# -- sources -------------------------------------------------------------------------------------


class FileKeySource:
    """Reads a keys file at start and again whenever its mtime or size changes."""

    def __init__(self, path: Path, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self._seen: tuple[float, int] | None = None

    def load_once(self, directory: Directory) -> bool:
        """Read the file if it changed; True when a new snapshot was applied."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        seen = (stat.st_mtime, stat.st_size)
        if seen == self._seen:
            return False
        try:
            snap = snapshot_from_file_data(json.loads(self.path.read_text()))
            directory.apply(snap)
        except (ValueError, KeyError, TypeError) as exc:  # half-written file: try again later
            log.warning(
                "keys file %s is unusable (%s); keeping the last one", self.path, type(exc).__name__
            )
            return False
        self._seen = seen
        return True

    async def run(self, directory: Directory) -> None:
        while True:
            self.load_once(directory)
            await asyncio.sleep(self.interval)


class KubernetesKeySource:
    """Polls key Secrets, the pepper, tiers, Tenants and this ModelDeployment's access list."""

    def __init__(
        self,
        kube: Kube,
        system_namespace: str,
        namespace: str,
        deployment: str,
        interval: float = 2.0,
    ) -> None:
        self.kube = kube
        self.system_namespace = system_namespace
        self.namespace = namespace
        self.deployment = deployment
        self.interval = interval

    def read(self) -> Snapshot:
        kube, system = self.kube, self.system_namespace
        return snapshot_from_objects(
            kube.list("v1", "Secret", namespace=system, label_selector=f"{KEYS_LABEL}=true"),
            kube.get("v1", "Secret", PEPPER_SECRET, namespace=system),
            kube.list(*TENANT),
            # The front door serves no one deployment: it has no access list to read.
            kube.get(*MODEL_DEPLOYMENT, self.deployment, namespace=self.namespace)
            if self.deployment
            else None,
            kube.get("v1", "ConfigMap", TIERS_CONFIGMAP, namespace=system),
        )

    async def run(self, directory: Directory) -> None:
        while True:
            # Any failure keeps the last good snapshot: a blip in the API must not lock users out.
            with contextlib.suppress(Exception):
                try:
                    directory.apply(await asyncio.to_thread(self.read))
                except Exception as exc:
                    log.warning("reading keys from the API failed: %s", type(exc).__name__)
                    raise
            await asyncio.sleep(self.interval)
