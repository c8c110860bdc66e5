"""What the gateway and the front door know of callers, and where they learn it.

Both sources build one ``Snapshot`` and hand it to ``Directory.apply``, which swaps it in
atomically: the ``KeyStore`` (shared with the front door) for verification, plus what only the
gateway needs (tiers, usage limits and the deployment's access list).

- ``KubernetesKeySource`` (``kubernetes_source.py``) keeps watch-fed caches of the API objects
  and reads a key it has not seen yet through from the API (``Directory.verify``).
- ``FileKeySource`` re-reads a JSON file when it changes, for local runs, tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from paitient_common.apikeys import (
    AuthFailure,
    KeyRecord,
    KeyStore,
    TenantInfo,
    VerifiedIdentity,
    parse_api_key,
    parse_bearer,
    records_from_secret_data,
)
from paitient_common.secrets import PEPPER_KEY
from paitient_common.tiers import DEFAULT_TIERS, Tier

log = logging.getLogger("paitient.gateway.keys")


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


class Resolver(Protocol):
    """Reads what a failed verification lacked (a key id, a tenant) through from the source;
    True when it found something, so verifying again may succeed."""

    async def resolve(self, key_id: str, client_id: str) -> bool: ...


class Directory:
    """What the gateway knows of callers; ``loaded`` turns true with the first snapshot."""

    def __init__(self) -> None:
        self.keys = KeyStore()
        self.usage: dict[str, TenantUsage] = {}
        self.allowed_namespaces: frozenset[str] = frozenset()
        self.tiers: dict[str, Tier] = dict(DEFAULT_TIERS)
        self.loaded = False
        # Set by a source that can read through and that can go stale (the Kubernetes one).
        self.resolver: Resolver | None = None
        self.staleness: Callable[[], str | None] = lambda: None

    def apply(self, snap: Snapshot) -> None:
        if snap.pepper:
            try:
                self.keys.set_pepper(snap.pepper)
            except ValueError as exc:  # the wrong size: the last good pepper stays
                log.warning("ignoring the pepper: %s", exc)
        self.keys.replace_records(snap.records)
        self.keys.replace_tenants(snap.tenants)
        self.usage = dict(snap.usage)
        self.allowed_namespaces = snap.allowed_namespaces
        self.tiers = dict(snap.tiers)
        self.loaded = self.keys.ready

    def tier(self, name: str) -> Tier:
        return self.tiers.get(name) or self.tiers.get("standard") or DEFAULT_TIERS["standard"]

    async def verify(
        self, authorization: str | None, client_id: str | None
    ) -> VerifiedIdentity | AuthFailure:
        """``KeyStore.verify``, and when the cache lacked the key id or its tenant, once more
        after the resolver read them through (a key used right after it was created)."""
        result = self.keys.verify(authorization, client_id)
        if (
            isinstance(result, AuthFailure)
            and result.reason in ("unknown_key", "wrong_client")
            and self.resolver is not None
            and client_id is not None
        ):
            parsed = parse_api_key(parse_bearer(authorization))
            if parsed is not None and await self.resolver.resolve(parsed[0], client_id):
                result = self.keys.verify(authorization, client_id)
        return result

    def unready_reason(self) -> str | None:
        """Why callers cannot be trusted to be judged right now, or None."""
        if not self.loaded:
            return "keys are not loaded yet"
        return self.staleness()


class KeySource(Protocol):
    async def run(self, directory: Directory) -> None: ...


# -- parsing (pure) ------------------------------------------------------------------------------


def parse_tenant(obj: Mapping[str, Any]) -> tuple[TenantInfo, TenantUsage] | None:
    """A Tenant object's TenantInfo and usage; None for one without a name or client ID."""
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


def parse_tiers(configmap: Mapping[str, Any] | None) -> dict[str, Tier]:
    """The tiers ConfigMap over the defaults; a tier that does not parse is skipped."""
    tiers = dict(DEFAULT_TIERS)
    for name, text in ((configmap or {}).get("data") or {}).items():
        try:
            tiers[name] = Tier.model_validate_json(text)
        except ValidationError:
            log.warning("tier %s in the tiers ConfigMap does not parse; ignored", name)
    return tiers


def parse_pepper(secret: Mapping[str, Any] | None) -> bytes:
    pepper_b64 = ((secret or {}).get("data") or {}).get(PEPPER_KEY, "")
    return base64.b64decode(pepper_b64) if pepper_b64 else b""


def parse_key_secret(secret: Mapping[str, Any]) -> list[KeyRecord]:
    return records_from_secret_data(secret.get("data"))


def parse_access(deployment: Mapping[str, Any] | None) -> frozenset[str]:
    """The namespaces a ModelDeployment's ``spec.access`` lets in besides its own."""
    access = ((deployment or {}).get("spec") or {}).get("access") or {}
    return frozenset(access.get("allowedNamespaces") or ())


def snapshot_from_parts(
    pepper: bytes,
    key_records: Sequence[Sequence[KeyRecord]],
    tenants: Sequence[tuple[TenantInfo, TenantUsage] | None],
    allowed_namespaces: frozenset[str],
    tiers: dict[str, Tier],
) -> Snapshot:
    """A snapshot of what the parsers above made of each object."""
    parsed = [t for t in tenants if t is not None]
    return Snapshot(
        pepper=pepper,
        records=[r for records in key_records for r in records],
        tenants=[info for info, _ in parsed],
        usage={info.name: usage for info, usage in parsed},
        allowed_namespaces=allowed_namespaces,
        tiers=tiers,
    )


def snapshot_from_objects(
    key_secrets: Sequence[Mapping[str, Any]],
    pepper_secret: Mapping[str, Any] | None,
    tenants: Sequence[Mapping[str, Any]],
    deployment: Mapping[str, Any] | None,
    tiers_configmap: Mapping[str, Any] | None = None,
) -> Snapshot:
    """A snapshot from the API objects, as plain dicts."""
    return snapshot_from_parts(
        parse_pepper(pepper_secret),
        [parse_key_secret(s) for s in key_secrets],
        [parse_tenant(t) for t in tenants],
        parse_access(deployment),
        parse_tiers(tiers_configmap),
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
