"""What the CLI does, as functions over a Kube client (the argument parsing is in main.py).

Each function returns the lines to print or raises ``CliError`` with one clear line.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from paitient_common import apikeys
from paitient_common.keyretention import DEFAULT_RETENTION, KeyRefused, add_key, describe
from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.secrets import PEPPER_KEY, PEPPER_SECRET, keys_secret_name
from paitient_common.tiers import DEFAULT_TIERS

TENANT = ("paitient.ai/v1alpha1", "Tenant")
MODEL_DEPLOYMENT = ("paitient.ai/v1alpha1", "ModelDeployment")
USAGE_REPORT = ("paitient.ai/v1alpha1", "UsageReport")
SECRET = ("v1", "Secret")
# Writes to a key Secret are conditional on the version read; a write that lost a race is
# redone from a fresh read, this many times at most.
WRITE_ATTEMPTS = 5


class CliError(Exception):
    """One line for the user; the CLI exits non-zero."""


def _tenants(kube: Kube) -> list[Obj]:
    return kube.list(*TENANT)


def tenant_by_client_id(kube: Kube, client_id: str) -> Obj:
    for tenant in _tenants(kube):
        if tenant.get("spec", {}).get("clientId") == client_id:
            return tenant
    raise CliError(
        f"unknown client ID {client_id!r}: no tenant has it (see `paitient tenants list`)"
    )


def tenant_by_name(kube: Kube, name: str) -> Obj:
    tenant = kube.get(*TENANT, name)
    if tenant is None:
        raise CliError(f"unknown tenant {name!r} (see `paitient tenants list`)")
    return tenant


# -- tenants -----------------------------------------------------------------------------------


def create_tenant(
    kube: Kube, name: str, client_id: str, tier: str, namespace: str | None, known_tiers: set[str]
) -> list[str]:
    if tier not in known_tiers:
        raise CliError(f"unknown tier {tier!r}; known tiers: {', '.join(sorted(known_tiers))}")
    for other in _tenants(kube):
        if other.get("spec", {}).get("clientId") == client_id:
            raise CliError(
                f"client ID {client_id!r} is already used by tenant {other['metadata']['name']!r}"
            )
    spec: dict[str, Any] = {"clientId": client_id, "tier": tier}
    if namespace:
        spec["namespace"] = namespace
    body = {"apiVersion": TENANT[0], "kind": TENANT[1], "metadata": {"name": name}, "spec": spec}
    try:
        kube.create(body)
    except KubeError as exc:
        if exc.status == 409:
            raise CliError(f"tenant {name!r} already exists") from exc
        if exc.status == 422:
            raise CliError(f"invalid tenant: {exc.message}") from exc
        raise
    return [
        f"tenant {name} created (client ID {client_id}, tier {tier}, namespace {namespace or 'tenant-' + name})"
    ]


def list_tenants(kube: Kube) -> list[str]:
    rows = [
        ("NAME", "CLIENT ID", "TIER", "NAMESPACE", "USAGE", "LIMIT", "DEPLOYMENTS", "SUSPENDED")
    ]
    for t in sorted(_tenants(kube), key=lambda t: t["metadata"]["name"]):
        status, spec = t.get("status") or {}, t.get("spec", {})
        rows.append(
            (
                t["metadata"]["name"],
                spec.get("clientId", ""),
                spec.get("tier", ""),
                status.get("namespace", ""),
                str(status.get("currentUsage", "")),
                str(status.get("usageLimit", "")),
                str(status.get("deployments", "")),
                "yes" if spec.get("suspended") else "no",
            )
        )
    return table(rows)


def set_suspended(kube: Kube, name: str, suspended: bool) -> list[str]:
    tenant_by_name(kube, name)
    kube.patch(*TENANT, name, {"spec": {"suspended": suspended}})
    return [f"tenant {name} {'suspended: its keys now get 403' if suspended else 'resumed'}"]


def delete_tenant(kube: Kube, name: str, force: bool) -> list[str]:
    tenant = tenant_by_name(kube, name)
    namespace = (tenant.get("status") or {}).get("namespace") or f"tenant-{name}"
    remaining = kube.list(*MODEL_DEPLOYMENT, namespace=namespace)
    if remaining and not force:
        raise CliError(
            f"tenant {name} still has {len(remaining)} ModelDeployments in {namespace}; delete them "
            "first, or pass --force to delete the tenant with its namespace and everything in it"
        )
    if force:
        kube.patch(
            *TENANT, name, {"metadata": {"annotations": {"paitient.ai/force-delete": "true"}}}
        )
    kube.delete(*TENANT, name)
    return [
        f"tenant {name} deleted" + (f" with {len(remaining)} ModelDeployments" if remaining else "")
    ]


# -- keys --------------------------------------------------------------------------------------


def _pepper(kube: Kube, system_namespace: str) -> bytes:
    secret = kube.get(*SECRET, PEPPER_SECRET, namespace=system_namespace)
    if secret is None or PEPPER_KEY not in (secret.get("data") or {}):
        raise CliError(
            f"no pepper Secret {system_namespace}/{PEPPER_SECRET}: is the operator running? It creates it at start"
        )
    return base64.b64decode(secret["data"][PEPPER_KEY])


def create_key(
    kube: Kube,
    client_id: str,
    expires: timedelta | None,
    description: str,
    system_namespace: str,
    retention: timedelta = DEFAULT_RETENTION,
) -> list[str]:
    """Add a key to the tenant's Secret, removing in the same write the records past
    ``retention``; refused with a message when the record is too large or the tenant full."""
    tenant = tenant_by_client_id(kube, client_id)
    return create_key_for(kube, tenant, expires, description, system_namespace, retention)


def create_key_for(
    kube: Kube,
    tenant: Obj,
    expires: timedelta | None,
    description: str,
    system_namespace: str,
    retention: timedelta = DEFAULT_RETENTION,
) -> list[str]:
    """``create_key`` for a tenant object the caller has (no search by client ID): the
    plaintext first, then what to tell the user."""
    name, client_id = tenant["metadata"]["name"], tenant["spec"]["clientId"]
    secret_name = keys_secret_name(name)
    not_ready = f"tenant {name} is not ready yet (no Secret {system_namespace}/{secret_name}); try again in a moment"
    now = datetime.now(UTC).replace(microsecond=0)
    key = apikeys.generate_api_key()
    record = apikeys.new_record(
        key, _pepper(kube, system_namespace), name, client_id, now,
        expires=now + expires if expires else None, description=description,
    )  # fmt: skip

    def change(secret: Obj) -> dict[str, str | None]:
        try:
            return add_key(secret.get("data"), record, now, retention).data
        except KeyRefused as exc:
            raise CliError(str(exc)) from exc

    written = _write_keys_secret(kube, secret_name, system_namespace, change, not_ready)
    pruned = [k for k, v in (written or {}).items() if v is None]
    lines = [
        key.plaintext,
        "",
        f"API key {key.key_id} for client ID {client_id} (tenant {name})"
        + (f", expires {record.expires:%Y-%m-%d %H:%M} UTC" if record.expires else ", no expiry"),
        "This is the only time the key is shown: store it now. Only its hash is kept.",
    ]
    if pruned:
        lines.append(
            f"Removed {len(pruned)} record{'s' if len(pruned) != 1 else ''} of keys revoked or "
            f"expired more than {describe(retention)} ago."
        )
    return lines


def _write_keys_secret(
    kube: Kube,
    secret_name: str,
    system_namespace: str,
    change: Callable[[Obj], dict[str, str | None] | None],
    missing: str,
) -> dict[str, str | None] | None:
    """Read the Secret, write ``change(secret)`` into its ``data`` (None: nothing to write) on
    the condition that it is still the version read, else read again; the data written.
    ``CliError(missing)`` when there is no such Secret."""
    for _ in range(WRITE_ATTEMPTS):
        secret = kube.get(*SECRET, secret_name, namespace=system_namespace)
        if secret is None:
            raise CliError(missing)
        data = change(secret)
        if data is None:
            return None
        # A resourceVersion in a merge patch is a precondition: 409 if anyone wrote since.
        version = secret["metadata"]["resourceVersion"]
        patch = {"metadata": {"resourceVersion": version}, "data": data}
        try:
            kube.patch(*SECRET, secret_name, patch, namespace=system_namespace)
        except KubeError as exc:
            if exc.status == 409:
                continue
            raise
        return data
    raise CliError(
        f"the Secret {system_namespace}/{secret_name} changed under every one of "
        f"{WRITE_ATTEMPTS} attempts (other key writes at the same time?); try again"
    )


def _all_records(kube: Kube, system_namespace: str) -> list[tuple[str, apikeys.KeyRecord]]:
    secrets = kube.list(
        *SECRET, namespace=system_namespace, label_selector="paitient.ai/api-keys=true"
    )
    return [
        (s["metadata"]["name"], r)
        for s in secrets
        for r in apikeys.records_from_secret_data(s.get("data"))
    ]


def _last_used(kube: Kube) -> dict[str, str]:
    seen: dict[str, str] = {}
    for report in kube.list(*USAGE_REPORT):
        for key_id, when in (report.get("spec", {}).get("keyLastUsed") or {}).items():
            seen[key_id] = max(seen.get(key_id, ""), str(when))
    return seen


def list_keys(kube: Kube, client_id: str | None, system_namespace: str) -> list[str]:
    now = datetime.now(UTC)
    last_used = _last_used(kube)
    rows = [("KEY ID", "CLIENT ID", "TENANT", "CREATED", "EXPIRES", "LAST USED", "STATE")]
    records = sorted(
        (r for _, r in _all_records(kube, system_namespace)), key=lambda r: (r.client_id, r.created)
    )
    for r in records:
        if client_id and r.client_id != client_id:
            continue
        rows.append(
            (
                r.key_id,
                r.client_id,
                r.tenant,
                f"{r.created:%Y-%m-%d %H:%M}",
                f"{r.expires:%Y-%m-%d %H:%M}" if r.expires else "never",
                last_used.get(r.key_id, "never"),
                r.state(now),
            )
        )
    return table(rows)


def revoke_key(kube: Kube, key_id: str, system_namespace: str) -> list[str]:
    for secret_name, record in _all_records(kube, system_namespace):
        if record.key_id == key_id:
            return _revoke(kube, secret_name, key_id, system_namespace)
    raise CliError(f"unknown key id {key_id!r} (see `paitient keys list`)")


def _revoke(kube: Kube, secret_name: str, key_id: str, system_namespace: str) -> list[str]:
    said: list[str] = []

    def change(secret: Obj) -> dict[str, str | None] | None:
        found = [
            r for r in apikeys.records_from_secret_data(secret.get("data")) if r.key_id == key_id
        ]
        if not found:  # removed meanwhile: it had been revoked or expired for the retention
            said[:] = [f"key {key_id} was revoked or expired long ago and its record removed"]
            return None
        if found[0].revoked is not None:
            said[:] = [f"key {key_id} was already revoked at {found[0].revoked:%Y-%m-%d %H:%M} UTC"]
            return None
        revoked = found[0].model_copy(update={"revoked": datetime.now(UTC).replace(microsecond=0)})
        said[:] = [f"key {key_id} revoked; the front door and every gateway refuse it within 1 s"]
        return dict(apikeys.records_to_secret_data([revoked]))

    gone = f"no Secret {system_namespace}/{secret_name}: was the tenant deleted?"
    _write_keys_secret(kube, secret_name, system_namespace, change, gone)
    return said


def known_tiers(kube: Kube, system_namespace: str) -> set[str]:
    """Tiers the operator publishes in its ConfigMap, else the defaults."""
    cm = kube.get("v1", "ConfigMap", "paitient-tiers", namespace=system_namespace)
    if cm and cm.get("data"):
        return set(cm["data"])
    return set(DEFAULT_TIERS)


def table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
