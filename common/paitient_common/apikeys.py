"""API keys: how they look, how they are stored, and the one verification every component uses.

A key reads ``psk_<key id>_<secret>``: the prefix makes a leaked key recognisable to secret
scanners, the 12-character key id is public (safe to log, finds the record without scanning),
the secret is 32 random bytes. Only ``HMAC-SHA256(pepper, key id + secret)`` is stored; the
pepper lives in its own Secret (``paitient_common.secrets.PEPPER_SECRET``), apart from the key
records, so a copy of the records alone verifies nothing and cannot be brute-forced offline.

``verify`` answers every failure (malformed, unknown, wrong secret, wrong client ID, expired,
revoked) with the same ``AuthFailure`` and the same public message; the internal reason is for
metrics only. It computes the HMAC even for an unknown key id, so timing does not tell an
unknown id from a wrong secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from paitient_common.errors import AUTHENTICATION_MESSAGE

PREFIX: Final = "psk"
KEY_ID_LENGTH: Final = 12
SECRET_LENGTH: Final = 43  # 32 bytes, unpadded base64url
KEY_LENGTH: Final = len(PREFIX) + 1 + KEY_ID_LENGTH + 1 + SECRET_LENGTH
_KEY_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lowercase, no 0/1/8/9
_KEY_RE: Final = re.compile(r"psk_([a-z2-7]{12})_([A-Za-z0-9_-]{43})")
KEY_ID_PATTERN: Final = r"^[a-z2-7]{12}$"
# The Tenant CRD's own rule for client IDs: anything else cannot belong to a tenant.
CLIENT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}[A-Za-z0-9]$"
_CLIENT_ID_RE: Final = re.compile(CLIENT_ID_PATTERN[1:-1])
MAX_HEADER_LENGTH: Final = 256
PUBLIC_MESSAGE: Final = AUTHENTICATION_MESSAGE
# The operator makes 32 bytes; fewer than 16 means a misconfiguration, not a choice.
MIN_PEPPER_BYTES: Final = 16
MAX_PEPPER_BYTES: Final = 1024
_DUMMY_HASH: Final = "0" * 64

FailureReason = Literal[
    "missing",
    "malformed",
    "unknown_key",
    "wrong_secret",
    "wrong_client",
    "expired",
    "revoked",
    "not_ready",
]


@dataclass(frozen=True)
class GeneratedKey:
    """A new key: ``plaintext`` is shown once and never stored."""

    key_id: str
    plaintext: str = field(repr=False)
    secret: str = field(repr=False)


def generate_api_key() -> GeneratedKey:
    """A fresh key from the OS's CSPRNG: 60 bits of public id, 256 bits of secret."""
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return GeneratedKey(key_id, f"{PREFIX}_{key_id}_{secret}", secret)


def parse_api_key(text: object) -> tuple[str, str] | None:
    """(key id, secret), or None for anything that is not a well-formed key. Never raises."""
    if not isinstance(text, str) or len(text) != KEY_LENGTH:
        return None
    # fullmatch: ``$`` would let a trailing newline through.
    match = _KEY_RE.fullmatch(text)
    return (match.group(1), match.group(2)) if match else None


def parse_bearer(header: object) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive).

    None when the header is missing, empty, oversized, another scheme, or holds more than one
    credential (a repeated header arrives joined by commas).
    """
    if not isinstance(header, str) or not header or len(header) > MAX_HEADER_LENGTH:
        return None
    # HTTP's optional whitespace is space and tab only; anything else stays and fails the parse.
    scheme, _, token = header.strip(" \t").partition(" ")
    token = token.strip(" \t")
    if scheme.lower() != "bearer" or not token or any(c in token for c in " \t,"):
        return None
    return token


def hash_secret(pepper: bytes, key_id: str, secret: str) -> str:
    """HMAC-SHA256 hex of ``key id.secret``: binding the id means a record cannot be moved to
    another id. Stored hashes depend on this exact input: never change it."""
    return hmac.new(pepper, f"{key_id}.{secret}".encode(), hashlib.sha256).hexdigest()


def load_pepper(source: bytes | str | os.PathLike[str]) -> bytes:
    """The pepper, given as its bytes or as the path of a file holding them (a mounted Secret).

    The pepper is its own Secret (``paitient-api-key-pepper``, key ``pepper``), made once by the
    operator and never rewritten: every stored hash depends on it. The file is raw bytes (as
    Kubernetes mounts Secret data), so nothing is stripped: a random pepper may end in ``\\n``.
    """
    pepper = source if isinstance(source, bytes) else Path(source).read_bytes()
    if not MIN_PEPPER_BYTES <= len(pepper) <= MAX_PEPPER_BYTES:
        # The length only: the message must not carry the pepper.
        raise ValueError(
            f"API-key pepper must be {MIN_PEPPER_BYTES} to {MAX_PEPPER_BYTES} bytes, "
            f"got {len(pepper)}"
        )
    return pepper


class KeyRecord(BaseModel):
    """What is stored of a key: never the key itself. Times are timezone-aware (UTC)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True
    )

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)
    tenant: str = Field(min_length=1)
    client_id: str = Field(pattern=CLIENT_ID_PATTERN)
    created: AwareDatetime
    expires: AwareDatetime | None = None
    revoked: AwareDatetime | None = None
    # Informational (``keys list``): gateways report use in UsageReports, they never write here.
    last_used: AwareDatetime | None = None
    description: str = ""

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        # Any revocation counts at once, even one stamped in the future by a skewed clock:
        # a revoked key must stop working now, not when the clocks agree.
        if self.revoked is not None:
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
    """The record to store for a freshly generated key."""
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
    """Secret ``data``: key id -> base64 of the record's JSON (camelCase)."""
    return {
        r.key_id: base64.b64encode(r.model_dump_json(by_alias=True).encode()).decode()
        for r in records
    }


def decode_secret_data(data: Mapping[str, Any] | None) -> tuple[list[KeyRecord], list[str]]:
    """(records, names of entries that did not decode), so a watcher can count the bad ones.

    An entry filed under another key id than its own is refused: it was not written by us.
    """
    records, bad = [], []
    for name, value in (data or {}).items():
        try:
            record = KeyRecord.model_validate(json.loads(base64.b64decode(value, validate=True)))
        except (ValueError, TypeError, binascii.Error, ValidationError):
            bad.append(str(name))
            continue
        if record.key_id != name:
            bad.append(str(name))
            continue
        records.append(record)
    return records, bad


def records_from_secret_data(data: Mapping[str, Any] | None) -> list[KeyRecord]:
    """Records of a Secret's ``data``; entries that do not decode are skipped, not fatal."""
    return decode_secret_data(data)[0]


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantInfo:
    """What verification needs to know of a tenant."""

    name: str
    client_id: str
    namespace: str
    tier: str
    suspended: bool = False


def tenant_info_from_object(tenant: Mapping[str, Any]) -> TenantInfo:
    """TenantInfo of a ``Tenant`` object as the Kubernetes API returns it."""
    spec = tenant.get("spec") or {}
    return TenantInfo(
        name=str(tenant["metadata"]["name"]),
        client_id=str(spec.get("clientId", "")),
        namespace=str((tenant.get("status") or {}).get("namespace", "")),
        tier=str(spec.get("tier", "")),
        suspended=bool(spec.get("suspended", False)),
    )


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
    """Any failure: the public message is the same whatever the reason (kept for metrics)."""

    reason: FailureReason
    message: str = PUBLIC_MESSAGE


def verify(
    key_text: str | None,
    client_id: str | None,
    lookup: Callable[[str], KeyRecord | None],
    pepper: bytes,
    now: datetime,
    *,
    lookup_tenant: Callable[[str], TenantInfo | None],
) -> VerifiedIdentity | AuthFailure:
    """The one verification: the key must hash to its record and belong, with ``client_id``, to
    a known tenant. Every failure looks the same from outside.

    ``lookup`` finds a record by key id, ``lookup_tenant`` a tenant by name. A tenant is required
    so that a deleted tenant's lingering keys, and suspension, are both seen.
    """
    if now.tzinfo is None:
        raise ValueError("verify needs a timezone-aware time")
    if len(pepper) < MIN_PEPPER_BYTES:
        return AuthFailure("not_ready")  # fail closed until the pepper is loaded
    if not key_text or not client_id:
        return AuthFailure("missing")
    parsed = parse_api_key(key_text)
    if parsed is None or not isinstance(client_id, str) or not _CLIENT_ID_RE.fullmatch(client_id):
        return AuthFailure("malformed")
    key_id, secret = parsed
    record = lookup(key_id)
    known = record is not None and record.key_id == key_id
    # Always hash and compare, so an unknown key id costs the same as a wrong secret.
    expected = record.hash if record is not None and known else _DUMMY_HASH
    matches = hmac.compare_digest(hash_secret(pepper, key_id, secret), expected)
    if record is None or not known:
        return AuthFailure("unknown_key")
    if not matches:
        return AuthFailure("wrong_secret")
    # Both strings are ASCII (checked above); client IDs are public, compared this way for habit.
    if not hmac.compare_digest(client_id, record.client_id):
        return AuthFailure("wrong_client")
    state = record.state(now)
    if state != "active":
        return AuthFailure(state)
    tenant = lookup_tenant(record.tenant)
    if tenant is None or tenant.client_id != client_id:
        return AuthFailure("wrong_client")
    return VerifiedIdentity(tenant, key_id)


@dataclass(frozen=True)
class _Snapshot:
    records: Mapping[str, KeyRecord]
    tenants: Mapping[str, TenantInfo]  # by name
    by_client_id: Mapping[str, TenantInfo]
    pepper: bytes


class KeyStore:
    """Key records and tenants in memory, each set replaced atomically by a watcher.

    Readers take one immutable snapshot, so a verification never sees half of an update.
    Until a pepper is set the store is not ``ready`` and every verification fails.
    """

    def __init__(self, pepper: bytes = b"") -> None:
        self._lock = threading.Lock()
        self._snap = _Snapshot({}, {}, {}, load_pepper(pepper) if pepper else b"")

    @property
    def ready(self) -> bool:
        """Whether a pepper is loaded (for a readiness probe)."""
        return bool(self._snap.pepper)

    def set_pepper(self, pepper: bytes) -> None:
        checked = load_pepper(pepper)
        with self._lock:
            self._snap = _Snapshot(
                self._snap.records, self._snap.tenants, self._snap.by_client_id, checked
            )

    def replace_records(self, records: Iterable[KeyRecord]) -> list[str]:
        """Swap in a full set of records; returns key ids dropped for appearing twice.

        Two records under one id can only be a mistake or tampering: neither is trusted.
        """
        records = list(records)
        twice = sorted(k for k, n in Counter(r.key_id for r in records).items() if n > 1)
        fresh = {r.key_id: r for r in records if r.key_id not in twice}
        with self._lock:
            s = self._snap
            self._snap = _Snapshot(fresh, s.tenants, s.by_client_id, s.pepper)
        return twice

    def replace_tenants(self, tenants: Iterable[TenantInfo]) -> list[str]:
        """Swap in a full set of tenants; returns client IDs claimed by more than one.

        Such a client ID maps to no tenant in ``tenant_by_client_id`` rather than to a random one.
        Verification is unaffected: a key names its own tenant.
        """
        tenants = list(tenants)
        twice = sorted(c for c, n in Counter(t.client_id for t in tenants).items() if n > 1)
        by_name = {t.name: t for t in tenants}
        by_client = {t.client_id: t for t in tenants if t.client_id not in twice}
        with self._lock:
            self._snap = _Snapshot(self._snap.records, by_name, by_client, self._snap.pepper)
        return twice

    def record(self, key_id: str) -> KeyRecord | None:
        return self._snap.records.get(key_id)

    def tenant(self, name: str) -> TenantInfo | None:
        return self._snap.tenants.get(name)

    def tenant_by_client_id(self, client_id: str) -> TenantInfo | None:
        return self._snap.by_client_id.get(client_id)

    def verify(
        self, authorization: str | None, client_id: str | None, now: datetime | None = None
    ) -> VerifiedIdentity | AuthFailure:
        """Verify an ``Authorization`` header and ``X-Client-ID`` against one snapshot."""
        snap = self._snap  # one read: records, tenants and pepper from the same update
        token = parse_bearer(authorization)
        if authorization and token is None:
            return AuthFailure("malformed" if snap.pepper else "not_ready")
        return verify(
            token,
            client_id,
            snap.records.get,
            snap.pepper,
            now or datetime.now(UTC),
            lookup_tenant=snap.tenants.get,
        )
