"""The store's key names, in one place (pure). Every key is under ``paitient:`` and expires."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal

PREFIX: Final = "paitient:"
Kind = Literal["requests", "tokens"]


def tenant_scope(tenant: str) -> str:
    return f"t:{tenant}"


def deployment_scope(namespace: str, deployment: str) -> str:
    return f"d:{namespace}/{deployment}"


def bucket_key(scope: str, kind: Kind) -> str:
    """A requests- or tokens-per-minute bucket of a tenant or a deployment."""
    return f"{PREFIX}rl:{scope}:{kind}"


@dataclass(frozen=True)
class PeriodKeys:
    """A tenant's usage in one period: the usage hash and its reservations' leases."""

    usage: str
    leases: str


def period_keys(tenant: str, period_start: str) -> PeriodKeys:
    base = f"{tenant}:{period_start}"
    return PeriodKeys(f"{PREFIX}usage:{base}", f"{PREFIX}leases:{base}")


def counter_field(counter_id: str) -> str:
    """The field holding one gateway ledger's cumulative usage in a usage hash."""
    return f"c:{counter_id}"


def members_of_namespace(namespace: str) -> str:
    """Live gateways that serve tenants of ``namespace`` (their own or by the access list)."""
    return f"{PREFIX}gw:ns:{namespace}"


def members_of_deployment(namespace: str, deployment: str) -> str:
    return f"{PREFIX}gw:md:{namespace}/{deployment}"


def negative_key(kind: str, name: str) -> str:
    """A name a read-through did not find (a key id, a client ID)."""
    return f"{PREFIX}neg:{kind}:{_digest(name)}"


def idempotency_key(tenant: str, slot: str) -> str:
    """A write's Idempotency-Key record, per tenant (the slot is method, path and key)."""
    return f"{PREFIX}idem:{tenant}:{_digest(slot)}"


def _digest(text: str) -> str:
    # Caller-chosen text never becomes a key name as is: fixed length, no separators.
    return hashlib.sha256(text.encode()).hexdigest()[:32]
