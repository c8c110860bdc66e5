"""What a tenant's key Secret may hold: the size of a record, the most records, which are pruned
after the retention, and that a pruned revoked key is still refused (from memory, after one read)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paitient_common.apikeys import (
    PUBLIC_MESSAGE,
    AuthFailure,
    KeyRecord,
    KeyStore,
    TenantInfo,
    generate_api_key,
    new_record,
    records_to_secret_data,
)
from paitient_common.informer import Informer
from paitient_common.keycache.directory import Directory, Snapshot, parse_key_secret
from paitient_common.keycache.kubernetes_source import KeyReadThrough
from paitient_common.keyretention import (
    DEFAULT_RETENTION,
    MAX_KEYS_PER_TENANT,
    MAX_RECORD_BYTES,
    SECRET_BUDGET_BYTES,
    KeyRefused,
    add_key,
    describe,
    past_retention,
    prunable,
    stored_size,
)
from paitient_common.kubeasync import AsyncKube, Query
from paitient_common.readthrough import FreshReader
from paitient_common.secrets import KEYS_LABEL, keys_secret_name
from tests.unit.common.scripted_api import ScriptedApi

PEPPER = b"p" * 32
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def record(
    *,
    tenant: str = "acme",
    client_id: str = "acme-app",
    created: datetime = NOW - 100 * DAY,
    expires: datetime | None = None,
    revoked: datetime | None = None,
    description: str = "",
) -> KeyRecord:
    made = new_record(generate_api_key(), PEPPER, tenant, client_id, created, expires, description)
    return made.model_copy(update={"revoked": revoked})


def test_the_largest_names_fit_in_a_record_with_room_for_a_description() -> None:
    largest = record(tenant="t" * 56, client_id="c" * 128, expires=NOW)
    assert stored_size(largest) <= MAX_RECORD_BYTES - 500
    assert stored_size(record()) < 300  # a typical record, once revoked and used


def test_a_record_too_large_is_refused_with_what_to_shorten() -> None:
    long = record(description="d" * 2000)
    with pytest.raises(KeyRefused, match=r"description is too long.*shorten the description by"):
        add_key({}, long, NOW)
    # Escaped characters count as stored: six bytes each.
    with pytest.raises(KeyRefused):
        add_key({}, record(description="\x01" * 150), NOW)
    assert add_key({}, record(description="é" * 200), NOW).data  # 400 bytes: fits


def test_a_full_secret_of_the_largest_records_stays_well_under_a_secrets_mib() -> None:
    assert MAX_KEYS_PER_TENANT == SECRET_BUDGET_BYTES // MAX_RECORD_BYTES == 512
    base = stored_size(record(tenant="t" * 56, client_id="c" * 128))
    widest = [
        record(tenant="t" * 56, client_id="c" * 128, description="d" * (MAX_RECORD_BYTES - base))
        for _ in range(MAX_KEYS_PER_TENANT)
    ]
    last = datetime.max.replace(tzinfo=UTC)
    widest = [r.model_copy(update={"revoked": last, "last_used": last}) for r in widest]
    assert all(len(r.model_dump_json(by_alias=True)) == MAX_RECORD_BYTES for r in widest)
    data = records_to_secret_data(widest)
    # The API server counts a Secret's decoded data against its 1 MiB ...
    assert sum(len(base64.b64decode(v)) for v in data.values()) <= 512 * 1024
    # ... and a watch sends it as base64 in JSON: ~0.7 MB, past aiohttp's 512 KiB line limit
    # (why the watch reads in chunks), far below the bound on one event.
    on_the_wire = len(json.dumps({"type": "MODIFIED", "object": {"data": data}}))
    assert 512 * 1024 < on_the_wire < 760_000


@pytest.mark.parametrize(
    ("expires", "revoked", "gone"),
    [
        (None, None, False),  # active, no expiry: kept forever
        (NOW + 400 * DAY, None, False),  # active
        (NOW - 29 * DAY, None, False),  # expired within the retention
        (NOW - 30 * DAY, None, True),  # expired exactly the retention ago
        (None, NOW - 31 * DAY, True),  # revoked long ago
        (None, NOW - 1 * DAY, False),  # revoked recently
        (NOW - 60 * DAY, NOW - 1 * DAY, True),  # expired long ago, revoked later: the first counts
        (None, NOW + 5 * DAY, False),  # revoked "in the future" (a skewed clock): not yet
        (datetime.max.replace(tzinfo=UTC), None, False),  # no overflow near the year 9999
    ],
)
def test_what_is_past_the_retention(
    expires: datetime | None, revoked: datetime | None, gone: bool
) -> None:
    assert past_retention(record(expires=expires, revoked=revoked), NOW, DEFAULT_RETENTION) is gone


def test_adding_a_key_prunes_in_the_same_write_and_leaves_foreign_entries() -> None:
    old = record(revoked=NOW - 45 * DAY)
    recent = record(revoked=NOW - 2 * DAY)
    active = record()
    data = {**records_to_secret_data([old, recent, active]), "not-a-record": "eA=="}
    new = record(created=NOW)
    write = add_key(data, new, NOW)
    assert write.pruned == [old.key_id]
    assert write.data == {old.key_id: None, **records_to_secret_data([new])}
    assert prunable(data, NOW, timedelta(days=1)) == sorted([old.key_id, recent.key_id])


def test_a_full_tenant_is_refused_with_when_room_comes_back() -> None:
    full = [record() for _ in range(3)] + [record(revoked=NOW - 10 * DAY)]
    data = records_to_secret_data(full)
    with pytest.raises(KeyRefused) as refused:
        add_key(data, record(created=NOW), NOW, limit=4)
    message = str(refused.value)
    assert "tenant acme holds 4 key records, the most one tenant may hold (4)" in message
    assert "kept 30 days (--key-retention)" in message
    assert "the next goes after 2026-03-21 12:00 UTC" in message
    # A record past the retention makes room: pruned, and the new key fits.
    data |= records_to_secret_data([record(revoked=NOW - 31 * DAY)])
    write = add_key(data, record(created=NOW), NOW, limit=5)
    assert len(write.pruned) == 1
    # With nothing ever revoked or expiring, the message says so.
    with pytest.raises(KeyRefused, match="none of its keys is revoked or expires"):
        add_key(records_to_secret_data(full[:3]), record(created=NOW), NOW, limit=3)


def test_a_taken_key_id_is_never_overwritten() -> None:
    existing = record(revoked=NOW - DAY)
    with pytest.raises(KeyRefused, match="is taken"):
        add_key(records_to_secret_data([existing]), existing.model_copy(), NOW)


def test_retentions_read_as_people_write_them() -> None:
    assert (describe(timedelta(days=30)), describe(DAY), describe(timedelta(hours=12))) == (
        "30 days",
        "1 day",
        "12:00:00",
    )


def test_pruning_a_revoked_key_leaves_it_refused_with_the_same_answer() -> None:
    key = generate_api_key()
    mine = new_record(key, PEPPER, "acme", "acme-app", NOW - 60 * DAY)
    revoked = mine.model_copy(update={"revoked": NOW - 40 * DAY})
    tenant = TenantInfo("acme", "acme-app", "tenant-acme", "standard")
    store = KeyStore(PEPPER)
    store.replace_tenants([tenant])
    store.replace_records([revoked])
    before = store.verify(f"Bearer {key.plaintext}", "acme-app", NOW)
    data = records_to_secret_data([revoked])
    write = add_key(data, record(created=NOW), NOW)
    after_data = {k: v for k, v in {**data, **write.data}.items() if v is not None}
    store.replace_records(parse_key_secret({"data": after_data}))
    after = store.verify(f"Bearer {key.plaintext}", "acme-app", NOW)
    assert isinstance(before, AuthFailure) and isinstance(after, AuthFailure)
    assert (before.reason, after.reason) == ("revoked", "unknown_key")
    assert before.message == after.message == PUBLIC_MESSAGE  # the same 401 from outside


def test_a_pruned_key_costs_one_read_then_is_refused_from_memory(tmp_path: Path) -> None:
    key = generate_api_key()
    pruned = new_record(key, PEPPER, "acme", "acme-app", NOW - 60 * DAY)
    active = record()
    api = ScriptedApi()
    secret = api.put(keys_secret_name("acme"), records_to_secret_data([active]))
    secret["metadata"]["labels"] = {KEYS_LABEL: "true"}
    assert pruned.key_id not in secret["data"]

    async def main() -> list[AuthFailure | object]:
        await api.start()
        kube = await AsyncKube.from_kubeconfig(str(api.kubeconfig(tmp_path)))
        directory = Directory()
        tenant = TenantInfo("acme", "acme-app", "tenant-acme", "standard")

        def publish() -> None:
            records = [r for rs in keys.values() for r in rs]
            directory.apply(Snapshot(PEPPER, records, [tenant]))

        keys = Informer("keys", kube, Query("v1", "Secret", "ns"), parse_key_secret, publish)
        tenants: Informer[str] = Informer("tenants", kube, Query("v1", "Secret", "x"), str, publish)
        keys.merge(secret)
        directory.resolver = KeyReadThrough(
            kube, "ns", {"keys": keys, "tenants": tenants}, directory, FreshReader(0.0)
        )
        results = [await directory.verify(f"Bearer {key.plaintext}", "acme-app") for _ in range(20)]
        await kube.close()
        await api.stop()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, AuthFailure) and r.reason == "unknown_key" for r in results)
    assert api.requests == [f"get {keys_secret_name('acme')}"]  # one read, then from memory
