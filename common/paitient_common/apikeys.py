"""API keys: how they look, how they are stored, and the one verification every component uses.

A key reads ``psk_<key id>_<secret>``: the prefix makes a leaked key recognisable to secret
scanners, the 12-character key id is public (safe to log, finds the record without scanning),
the secret is 32 random bytes. Only ``HMAC-SHA256(pepper, key id + secret)`` is stored; the
pepper lives in its own Secret, so a copy of the key records alone verifies nothing.

``verify`` answers every failure (malformed, unknown, wrong secret, wrong client ID, expired,
revoked) with the same ``AuthFailure`` and the same public message; the internal reason is for
metrics only. It computes the HMAC even for an unknown key id, so timing does not tell an
unknown id from a wrong secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

PREFIX: Final = "psk"
KEY_ID_LENGTH: Final = 12
_KEY_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lowercase, no 0/1/8/9
_KEY_RE: Final = re.compile(r"^psk_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$")
MAX_HEADER_LENGTH: Final = 256
PUBLIC_MESSAGE: Final = "invalid API key or client ID"
_DUMMY_HASH: Final = "0" * 64

FailureReason = Literal[
    "missing", "malformed", "unknown_key", "wrong_secret", "wrong_client", "expired", "revoked"
]


@dataclass(frozen=True)
class GeneratedKey:
    """A new key: ``plaintext`` is shown once and never stored."""

    key_id: str
    plaintext: str = field(repr=False)
    secret: str = field(repr=False)


def generate_api_key() -> GeneratedKey:
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return GeneratedKey(key_id, f"{PREFIX}_{key_id}_{secret}", secret)


def parse_api_key(text: str | None) -> tuple[str, str] | None:
    """(key id, secret), or None for anything that is not a well-formed key."""
    if not text or len(text) > MAX_HEADER_LENGTH:
        return None
    match = _KEY_RE.match(text)
    return (match.group(1), match.group(2)) if match else None


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not header or len(header) > MAX_HEADER_LENGTH + 16:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or "," in token:
        return None
    return token


def hash_secret(pepper: bytes, key_id: str, secret: str) -> str:
    return hmac.new(pepper, f"{key_id}.{secret}".encode(), hashlib.sha256).hexdigest()


class KeyRecord(BaseModel):
    """What is stored of a key: never the key itself."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True
    )

    key_id: str = Field(pattern=r"^[a-z2-7]{12}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant: str
    client_id: str
    created: datetime
    expires: datetime | None = None
    revoked: datetime | None = None
    description: str = ""

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked is not None and self.revoked <= now:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"


def new_record(
    key: GeneratedKey,
    pepper: bytes,
    tenant: str,
    client_id: str,
    now: datetime,
    expires: datetime | None = None,
    description: str = "",
) -> KeyRecord:
    return KeyRecord(
        key_id=key.key_id,
        hash=hash_secret(pepper, key.key_id, key.secret),
        tenant=tenant,
        client_id=client_id,
        created=now,
        expires=expires,
        description=description,
    )


# -- the Secret that holds a tenant's records: one data entry per key id -------------------------


def records_to_secret_data(records: Iterable[KeyRecord]) -> dict[str, str]:
    return {
        r.key_id: base64.b64encode(r.model_dump_json(by_alias=True).encode()).decode()
        for r in records
    }


def records_from_secret_data(data: Mapping[str, str] | None) -> list[KeyRecord]:
    """Records of a Secret's ``data``; entries that do not parse are skipped, not fatal."""
    records = []
    for value in (data or {}).values():
        try:
            records.append(KeyRecord.model_validate(json.loads(base64.b64decode(value))))
        except (ValueError, TypeError):
            continue
    return records


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantInfo:
    """What verification needs to know of a tenant."""

    name: str
    client_id: str
    namespace: str
    tier: str
    suspended: bool = False


@dataclass(frozen=True)
class VerifiedIdentity:
    """A caller whose key and client ID match. ``suspended`` callers get 403, not 401."""

    tenant: TenantInfo
    key_id: str

    @property
    def suspended(self) -> bool:
        return self.tenant.suspended


@dataclass(frozen=True)
class AuthFailure:
    """Any failure: the public message is the same whatever the reason."""

    reason: FailureReason
    message: str = PUBLIC_MESSAGE


class KeyStore:
    """Key records and tenants in memory, replaced atomically by a watcher; thread-safe reads."""

    def __init__(self, pepper: bytes = b"") -> None:
        self._lock = threading.Lock()
        self._records: dict[str, KeyRecord] = {}
        self._tenants: dict[str, TenantInfo] = {}  # by tenant name
        self._pepper = pepper

    def set_pepper(self, pepper: bytes) -> None:
        with self._lock:
            self._pepper = pepper

    def replace_records(self, records: Iterable[KeyRecord]) -> None:
        fresh = {r.key_id: r for r in records}
        with self._lock:
            self._records = fresh

    def replace_tenants(self, tenants: Iterable[TenantInfo]) -> None:
        fresh = {t.name: t for t in tenants}
        with self._lock:
            self._tenants = fresh

    def tenant(self, name: str) -> TenantInfo | None:
        return self._tenants.get(name)

    def tenant_by_client_id(self, client_id: str) -> TenantInfo | None:
        return next((t for t in self._tenants.values() if t.client_id == client_id), None)

    def verify(
        self, authorization: str | None, client_id: str | None, now: datetime | None = None
    ) -> VerifiedIdentity | AuthFailure:
        with self._lock:
            records, tenants, pepper = self._records, self._tenants, self._pepper
        return verify(
            parse_bearer(authorization),
            client_id,
            records.get,
            tenants.get,
            pepper,
            now or datetime.now(UTC),
        )


def verify(
    key_text: str | None,
    client_id: str | None,
    lookup_record: Callable[[str], KeyRecord | None],
    lookup_tenant: Callable[[str], TenantInfo | None],
    pepper: bytes,
    now: datetime,
) -> VerifiedIdentity | AuthFailure:
    """The one verification: the key must hash to its record and belong, with ``client_id``, to
    a known tenant. Every failure looks the same from outside."""
    if not key_text or not client_id:
        return AuthFailure("missing")
    parsed = parse_api_key(key_text)
    if parsed is None:
        return AuthFailure("malformed")
    key_id, secret = parsed
    record = lookup_record(key_id)
    expected = record.hash if record is not None else _DUMMY_HASH
    # Always hash and compare, so an unknown key id costs the same as a wrong secret.
    matches = hmac.compare_digest(hash_secret(pepper, key_id, secret), expected)
    known_client = record.client_id if record is not None else ""
    client_matches = hmac.compare_digest(client_id.encode(), known_client.encode())
    if record is None:
        return AuthFailure("unknown_key")
    if not matches:
        return AuthFailure("wrong_secret")
    if not client_matches:
        return AuthFailure("wrong_client")
    state = record.state(now)
    if state != "active":
        return AuthFailure(state)
    tenant = lookup_tenant(record.tenant)
    if tenant is None or tenant.client_id != client_id:
        return AuthFailure("wrong_client")
    return VerifiedIdentity(tenant, key_id)
