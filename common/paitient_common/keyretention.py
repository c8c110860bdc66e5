"""How long a tenant's key records are kept and how many it may hold, so its key Secret stays
well under the 1 MiB a Secret may be (pure: the admin CLI, the only writer, applies it).

A record of a revoked or expired key is kept ``retention`` (30 days by default) after the key
stopped working, for ``keys list`` and audits, then removed by the next write to the Secret.
Removing it never lets the key back in: without its record a key id is unknown, and an unknown
key gets the same 401 as a revoked one. A tenant holds at most ``MAX_KEYS_PER_TENANT`` records
(active, and ended within the retention); a new key past that is refused with a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from paitient_common.apikeys import KeyRecord, decode_secret_data, records_to_secret_data

DEFAULT_RETENTION: Final = timedelta(days=30)
# The most one record may take in the Secret's data (its JSON, as the API server counts a
# Secret's size), once revoked and used. A record is ~290 bytes with short names and no
# description; the longest tenant name (56) and client ID (128) leave ~550 bytes for one.
MAX_RECORD_BYTES: Final = 1024
# Half of the 1 MiB a Secret's data may hold: a full Secret of the largest records is ~0.7 MB on a
# watch (base64), a full one of typical records ~0.2 MB.
SECRET_BUDGET_BYTES: Final = 512 * 1024
MAX_KEYS_PER_TENANT: Final = SECRET_BUDGET_BYTES // MAX_RECORD_BYTES  # 512
# The widest timestamp a record can carry (``9999-12-31T23:59:59.999999Z``).
_WIDEST_TIME: Final = datetime.max.replace(tzinfo=UTC)


class KeyRefused(ValueError):
    """A new key the tenant's Secret cannot take; the message is for the person who asked."""


@dataclass(frozen=True)
class KeyWrite:
    """What adding a key writes: the Secret ``data`` merge patch (``None`` removes an entry)."""

    data: dict[str, str | None]
    pruned: list[str]


def stored_size(record: KeyRecord) -> int:
    """Bytes ``record`` takes in the Secret's data at its largest: revoked and last used."""
    widest = record.model_copy(
        update={
            "revoked": record.revoked or _WIDEST_TIME,
            "last_used": record.last_used or _WIDEST_TIME,
        }
    )
    return len(widest.model_dump_json(by_alias=True).encode())


def ended_at(record: KeyRecord) -> datetime | None:
    """When the key stopped working (revoked or expired, whichever came first); None while it
    has neither a revocation nor an expiry."""
    times = [t for t in (record.revoked, record.expires) if t is not None]
    return min(times) if times else None


def removable_after(record: KeyRecord, retention: timedelta) -> datetime | None:
    """``retention`` after the key stopped working (or will, at its expiry); None for a key
    with neither a revocation nor an expiry, or one too far in the future to count."""
    ended = ended_at(record)
    try:
        return None if ended is None else ended + retention
    except OverflowError:  # an expiry near the year 9999: never
        return None


def past_retention(record: KeyRecord, now: datetime, retention: timedelta) -> bool:
    removable = removable_after(record, retention)
    return removable is not None and removable <= now


def prunable(data: Mapping[str, Any] | None, now: datetime, retention: timedelta) -> list[str]:
    """Key ids of the records whose key stopped working ``retention`` ago or longer. Entries
    that do not decode are left alone: not ours to judge."""
    records, _ = decode_secret_data(data)
    return sorted(r.key_id for r in records if past_retention(r, now, retention))


def add_key(
    data: Mapping[str, Any] | None,
    record: KeyRecord,
    now: datetime,
    retention: timedelta = DEFAULT_RETENTION,
    limit: int = MAX_KEYS_PER_TENANT,
) -> KeyWrite:
    """The write that adds ``record`` to a tenant's Secret ``data`` and prunes what is past
    ``retention``; ``KeyRefused`` when the record is too large or the tenant is full."""
    size = stored_size(record)
    if size > MAX_RECORD_BYTES:
        raise KeyRefused(
            f"the description is too long: the key's record would take {size} bytes, at most "
            f"{MAX_RECORD_BYTES} (shorten the description by {size - MAX_RECORD_BYTES} bytes)"
        )
    data = data or {}
    if record.key_id in data:  # 60 random bits: never in practice, and never overwritten
        raise KeyRefused(f"key id {record.key_id} is taken; run the command again")
    pruned = prunable(data, now, retention)
    kept = len(data) - len(pruned)
    if kept >= limit:
        raise KeyRefused(full_message(record.tenant, data, now, retention, limit))
    patch: dict[str, str | None] = dict.fromkeys(pruned)
    patch.update(records_to_secret_data([record]))
    return KeyWrite(patch, pruned)


def full_message(
    tenant: str, data: Mapping[str, Any], now: datetime, retention: timedelta, limit: int
) -> str:
    """Why a full tenant's new key is refused, and when room comes back by itself."""
    records, _ = decode_secret_data(data)
    kept = len(data) - len(prunable(data, now, retention))
    ends = sorted(
        t for r in records if (t := removable_after(r, retention)) is not None and t > now
    )
    when = (
        f"; the next goes after {ends[0]:%Y-%m-%d %H:%M} UTC"
        if ends
        else "; none of its keys is revoked or expires"
    )
    return (
        f"tenant {tenant} holds {kept} key records, the most one tenant may hold ({limit}): "
        f"revoke keys it no longer uses. A revoked or expired key's record is kept "
        f"{describe(retention)} (--key-retention), then removed at the next write{when}"
    )


def describe(retention: timedelta) -> str:
    """``30 days``, ``12:00:00``: how a retention reads in a message or a table."""
    if retention.days and not retention.seconds and not retention.microseconds:
        return f"{retention.days} day" + ("s" if retention.days != 1 else "")
    return str(retention)
