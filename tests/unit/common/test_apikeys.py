"""API keys: format, storage, and a verification that tells nobody why it failed."""

from __future__ import annotations

import base64
import hmac
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paitient_common import apikeys
from paitient_common.apikeys import (
    KEY_LENGTH,
    PUBLIC_MESSAGE,
    AuthFailure,
    GeneratedKey,
    KeyRecord,
    KeyStore,
    TenantInfo,
    VerifiedIdentity,
    decode_secret_data,
    generate_api_key,
    hash_secret,
    load_pepper,
    new_record,
    parse_api_key,
    parse_bearer,
    records_from_secret_data,
    records_to_secret_data,
    tenant_info_from_object,
    verify,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PEPPER = b"p" * 32
ACME = TenantInfo("acme", "acme-clinic", "tenant-acme", "standard")
BETA = TenantInfo("beta", "beta-health", "tenant-beta", "free")
UNKNOWN_KEY = "psk_aaaaaaaaaaaa_" + "A" * 43


@dataclass
class World:
    """A store with two tenants and one key each."""

    store: KeyStore
    acme: GeneratedKey
    beta: GeneratedKey

    def check(
        self, authorization: str | None, client_id: str | None, now: datetime = NOW
    ) -> VerifiedIdentity | AuthFailure:
        return self.store.verify(authorization, client_id, now)


def make_world(*, acme_expires: datetime | None = None) -> World:
    acme_key, beta_key = generate_api_key(), generate_api_key()
    store = KeyStore(PEPPER)
    store.replace_records(
        [
            new_record(acme_key, PEPPER, "acme", "acme-clinic", NOW, expires=acme_expires),
            new_record(beta_key, PEPPER, "beta", "beta-health", NOW),
        ]
    )
    store.replace_tenants([ACME, BETA])
    return World(store, acme_key, beta_key)


@pytest.fixture
def world() -> World:
    return make_world()


# -- the key format ------------------------------------------------------------------------------


def test_keys_are_prefixed_high_entropy_and_distinct() -> None:
    keys = {generate_api_key().plaintext for _ in range(200)}
    assert len(keys) == 200
    key = generate_api_key()
    assert key.plaintext.startswith(f"psk_{key.key_id}_")
    assert len(key.plaintext) == KEY_LENGTH
    assert parse_api_key(key.plaintext) == (key.key_id, key.secret)
    assert len(key.secret) == 43  # 32 bytes, base64url
    assert len(base64.urlsafe_b64decode(key.secret + "=")) == 32


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        42,
        b"psk_aaaaaaaaaaaa_" + b"A" * 43,
        UNKNOWN_KEY + "\n",  # ``$`` would have let this through
        UNKNOWN_KEY + "A",
        UNKNOWN_KEY[:-1],
        "PSK_aaaaaaaaaaaa_" + "A" * 43,
        "psk_AAAAAAAAAAAA_" + "A" * 43,  # key ids are lowercase base32
        "psk_aaaaaaaaaaa1_" + "A" * 43,
        "psk_aaaaaaaaaaaa_" + "A" * 42 + "=",
        "psk_aaaaaaaaaaaa_" + "A" * 42 + "\u00e9",
        "psk_aaaaaaaaaaaa_" + "A" * 42 + "\ud800",  # lone surrogate
        "x" * 100_000,
    ],
)
def test_parse_api_key_refuses_garbage_without_raising(text: object) -> None:
    assert parse_api_key(text) is None


def test_the_hash_input_is_pinned() -> None:
    # Every stored hash depends on this exact construction: changing it locks every key out.
    assert (
        hash_secret(PEPPER, "abcdefghijkl", "A" * 43)
        == "ce73caedc6d4e193c809be57d8eca38f187c4f45d03d96cca558323ce0bc1786"
    )
    assert hash_secret(PEPPER, "abcdefghijkl", "A" * 43) != hash_secret(
        b"q" * 32, "abcdefghijkl", "A" * 43
    )


# -- the Authorization header --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        ("Bearer abc, Bearer def", None),  # two headers, joined by the server
        ("Bearer abc,def", None),
        ("Bearer abc def", None),
        ("Bearer a\tb", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Token abc", None),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None),
        ("", None),
        (None, None),
        (b"Bearer abc", None),
        ("Bearer " + "a" * 300, None),
    ],
)
def test_bearer_parsing(header: object, token: str | None) -> None:
    assert parse_bearer(header) == token


# -- verification --------------------------------------------------------------------------------


def test_the_right_key_with_its_client_id_is_accepted(world: World) -> None:
    result = world.check(f"Bearer {world.acme.plaintext}", "acme-clinic")
    assert result == VerifiedIdentity(ACME, world.acme.key_id)
    assert not result.suspended
    assert isinstance(
        world.check(f"bearer {world.beta.plaintext}", "beta-health"), VerifiedIdentity
    )


@pytest.mark.parametrize(
    ("authorization", "client_id", "reason"),
    [
        (None, "acme-clinic", "missing"),
        ("", "acme-clinic", "missing"),
        ("Bearer ACME", None, "missing"),
        ("Bearer ACME", "", "missing"),
        ("Basic abc", "acme-clinic", "malformed"),
        ("Bearer not-a-key", "acme-clinic", "malformed"),
        ("Bearer ACME\n", "acme-clinic", "malformed"),
        ("Bearer ACME, Bearer ACME", "acme-clinic", "malformed"),
        ("Bearer " + "x" * 5000, "acme-clinic", "malformed"),
        ("Bearer ACME", "x" * 5000, "malformed"),
        ("Bearer ACME", "acme-clinic\n", "malformed"),
        ("Bearer ACME", "acme-clinïc", "malformed"),
        ("Bearer ACME", "acme-\ud800clinic", "malformed"),
        ("Bearer " + UNKNOWN_KEY, "acme-clinic", "unknown_key"),
        ("Bearer FORGED", "acme-clinic", "wrong_secret"),
        ("Bearer BETA", "acme-clinic", "wrong_client"),
        ("Bearer ACME", "beta-health", "wrong_client"),
        ("Bearer ACME", "nobody", "wrong_client"),
        ("Bearer ACME", "ACME-CLINIC", "wrong_client"),
    ],
)
def test_every_failure_looks_the_same(
    world: World, authorization: str | None, client_id: str | None, reason: str
) -> None:
    if authorization:
        forged = f"psk_{world.acme.key_id}_{'B' * 43}"
        authorization = (
            authorization.replace("ACME", world.acme.plaintext)
            .replace("BETA", world.beta.plaintext)
            .replace("FORGED", forged)
        )
    result = world.check(authorization, client_id)
    assert result == AuthFailure(reason)  # type: ignore[arg-type]
    # The one public sentence, whatever the reason; the answer on the wire is checked against
    # the running front door (tests/unit/frontdoor/test_middleware.py) and gateway.
    assert result.message == PUBLIC_MESSAGE


def test_expired_keys_fail_from_their_expiry_on() -> None:
    world = make_world(acme_expires=NOW + timedelta(days=1))
    header = f"Bearer {world.acme.plaintext}"
    assert isinstance(world.check(header, "acme-clinic", NOW), VerifiedIdentity)
    just_before = NOW + timedelta(days=1) - timedelta(microseconds=1)
    assert isinstance(world.check(header, "acme-clinic", just_before), VerifiedIdentity)
    assert world.check(header, "acme-clinic", NOW + timedelta(days=1)) == AuthFailure("expired")
    # A wrong client ID on an expired key is still the one failure, reason aside.
    later = world.check(header, "beta-health", NOW + timedelta(days=2))
    assert isinstance(later, AuthFailure) and later.message == PUBLIC_MESSAGE


def test_revoked_keys_fail_at_once_even_with_a_future_stamp(world: World) -> None:
    record = world.store.record(world.acme.key_id)
    assert record is not None
    header = f"Bearer {world.acme.plaintext}"
    for stamp in (NOW - timedelta(seconds=1), NOW + timedelta(hours=1)):  # clock skew
        world.store.replace_records([record.model_copy(update={"revoked": stamp})])
        assert world.check(header, "acme-clinic") == AuthFailure("revoked")


def test_rotation_keeps_both_keys_valid_until_the_old_one_is_revoked() -> None:
    old, new = generate_api_key(), generate_api_key()
    store = KeyStore(PEPPER)
    store.replace_tenants([ACME])
    records = [new_record(k, PEPPER, "acme", "acme-clinic", NOW) for k in (old, new)]
    store.replace_records(records)
    for key in (old, new):
        assert isinstance(
            store.verify(f"Bearer {key.plaintext}", "acme-clinic", NOW), VerifiedIdentity
        )
    store.replace_records([records[0].model_copy(update={"revoked": NOW}), records[1]])
    assert store.verify(f"Bearer {old.plaintext}", "acme-clinic", NOW) == AuthFailure("revoked")
    assert isinstance(store.verify(f"Bearer {new.plaintext}", "acme-clinic", NOW), VerifiedIdentity)


def test_suspended_tenants_verify_but_say_so(world: World) -> None:
    world.store.replace_tenants(
        [TenantInfo("acme", "acme-clinic", "tenant-acme", "standard", True)]
    )
    result = world.check(f"Bearer {world.acme.plaintext}", "acme-clinic")
    assert isinstance(result, VerifiedIdentity) and result.suspended


def test_a_deleted_tenants_lingering_keys_verify_nothing(world: World) -> None:
    world.store.replace_tenants([BETA])
    assert world.check(f"Bearer {world.acme.plaintext}", "acme-clinic") == AuthFailure(
        "wrong_client"
    )


def test_a_tenant_whose_client_id_changed_no_longer_accepts_the_old_pairing(world: World) -> None:
    world.store.replace_tenants([TenantInfo("acme", "acme-new", "tenant-acme", "standard"), BETA])
    for client_id in ("acme-clinic", "acme-new"):
        result = world.check(f"Bearer {world.acme.plaintext}", client_id)
        assert result == AuthFailure("wrong_client")


def test_a_different_pepper_verifies_nothing() -> None:
    key = generate_api_key()
    store = KeyStore(b"q" * 32)
    store.replace_tenants([ACME])
    store.replace_records([new_record(key, PEPPER, "acme", "acme-clinic", NOW)])
    assert store.verify(f"Bearer {key.plaintext}", "acme-clinic", NOW) == AuthFailure(
        "wrong_secret"
    )


def test_a_store_without_a_pepper_fails_closed(world: World) -> None:
    empty = KeyStore()
    assert not empty.ready
    empty.replace_tenants([ACME])
    empty.replace_records([r for k in (world.acme,) if (r := world.store.record(k.key_id))])
    for header in (f"Bearer {world.acme.plaintext}", "Basic abc"):
        result = empty.verify(header, "acme-clinic", NOW)
        assert result == AuthFailure("not_ready") and result.message == PUBLIC_MESSAGE
    empty.set_pepper(PEPPER)
    assert empty.ready
    assert isinstance(
        empty.verify(f"Bearer {world.acme.plaintext}", "acme-clinic", NOW), VerifiedIdentity
    )


def test_naive_times_are_a_programming_error(world: World) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        world.check(f"Bearer {world.acme.plaintext}", "acme-clinic", datetime(2026, 1, 1))


@pytest.mark.parametrize("case", ["unknown_key", "wrong_secret", "right"])
def test_every_well_formed_key_costs_exactly_one_hmac_and_one_digest_compare(
    world: World, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    hashed: list[str] = []
    compared: list[tuple[str, str]] = []
    real_hash, real_compare = apikeys.hash_secret, hmac.compare_digest

    def counting_hash(pepper: bytes, key_id: str, secret: str) -> str:
        hashed.append(key_id)
        return real_hash(pepper, key_id, secret)

    def counting_compare(a: str, b: str) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(apikeys, "hash_secret", counting_hash)
    monkeypatch.setattr(hmac, "compare_digest", counting_compare)
    key = {
        "unknown_key": UNKNOWN_KEY,
        "wrong_secret": f"psk_{world.acme.key_id}_{'B' * 43}",
        "right": world.acme.plaintext,
    }[case]
    result = world.check(f"Bearer {key}", "acme-clinic")
    assert isinstance(result, VerifiedIdentity) == (case == "right")
    key_id = key[4:16]
    assert hashed == [key_id]
    # The secret's digest is compared in constant time, against a dummy when the id is unknown.
    digest_compares = [pair for pair in compared if len(pair[0]) == 64]
    assert len(digest_compares) == 1
    if case == "unknown_key":
        assert digest_compares[0][1] == "0" * 64


def test_verify_takes_plain_lookups() -> None:
    key = generate_api_key()
    record = new_record(key, PEPPER, "acme", "acme-clinic", NOW)
    result = verify(
        key.plaintext,
        "acme-clinic",
        {key.key_id: record}.get,
        PEPPER,
        NOW,
        lookup_tenant={"acme": ACME}.get,
    )
    assert result == VerifiedIdentity(ACME, key.key_id)
    # A lookup that answers with some other record is treated as not knowing the key.
    other = generate_api_key()
    stray = verify(
        other.plaintext,
        "acme-clinic",
        lambda _: record,
        PEPPER,
        NOW,
        lookup_tenant={"acme": ACME}.get,
    )
    assert stray == AuthFailure("unknown_key")


# -- the store -----------------------------------------------------------------------------------


def test_duplicate_key_ids_are_dropped_not_guessed(world: World) -> None:
    record = world.store.record(world.acme.key_id)
    assert record is not None
    twin = record.model_copy(update={"tenant": "beta", "client_id": "beta-health"})
    assert world.store.replace_records([record, twin]) == [world.acme.key_id]
    assert world.store.record(world.acme.key_id) is None
    assert world.check(f"Bearer {world.acme.plaintext}", "acme-clinic") == AuthFailure(
        "unknown_key"
    )


def test_tenants_by_client_id(world: World) -> None:
    assert world.store.tenant_by_client_id("acme-clinic") == ACME
    assert world.store.tenant("beta") == BETA
    assert world.store.tenant_by_client_id("nobody") is None
    clash = TenantInfo("acme2", "acme-clinic", "tenant-acme2", "free")
    assert world.store.replace_tenants([ACME, BETA, clash]) == ["acme-clinic"]
    assert world.store.tenant_by_client_id("acme-clinic") is None
    assert world.store.tenant_by_client_id("beta-health") == BETA


def test_replacement_is_atomic_for_concurrent_readers(world: World) -> None:
    # Two complete generations of (records, pepper-consistent) keys: a reader must see one or
    # the other, never an empty or half-built map.
    gen_a = [r for k in (world.acme, world.beta) if (r := world.store.record(k.key_id))]
    gen_b = [new_record(generate_api_key(), PEPPER, "beta", "beta-health", NOW), gen_a[0]]
    stop = threading.Event()
    failures: list[object] = []

    def reader() -> None:
        while not stop.is_set():
            result = world.check(f"Bearer {world.acme.plaintext}", "acme-clinic")
            if not isinstance(result, VerifiedIdentity):
                failures.append(result)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(2000):
        world.store.replace_records(gen_a if i % 2 else gen_b)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []


def test_tenant_info_from_a_tenant_object() -> None:
    obj = {
        "metadata": {"name": "acme"},
        "spec": {"clientId": "acme-clinic", "tier": "standard", "suspended": True},
        "status": {"namespace": "tenant-acme"},
    }
    assert tenant_info_from_object(obj) == TenantInfo(
        "acme", "acme-clinic", "tenant-acme", "standard", suspended=True
    )
    bare = tenant_info_from_object({"metadata": {"name": "new"}, "spec": {"clientId": "c-1"}})
    assert bare == TenantInfo("new", "c-1", "", "", suspended=False)


# -- storage -------------------------------------------------------------------------------------


def test_the_plaintext_is_never_stored() -> None:
    key = generate_api_key()
    record = new_record(key, PEPPER, "acme", "acme-clinic", NOW, description="ci")
    data = records_to_secret_data([record])
    stored = [
        record.model_dump_json(),
        record.model_dump_json(by_alias=True),
        json.dumps(record.model_dump(mode="json")),
        repr(record),
        json.dumps(data),
        *(base64.b64decode(v).decode() for v in data.values()),
    ]
    for text in stored:
        assert key.secret not in text and key.plaintext not in text
    assert key.plaintext not in repr(key) and key.secret not in str(key)
    assert record.hash not in repr(record)  # the hash stays out of logs too


def test_secret_data_round_trips_in_camel_case() -> None:
    key = generate_api_key()
    record = new_record(
        key, PEPPER, "acme", "acme-clinic", NOW, expires=NOW + timedelta(days=90)
    ).model_copy(update={"last_used": NOW})
    data = records_to_secret_data([record])
    assert list(data) == [key.key_id]
    stored = json.loads(base64.b64decode(data[key.key_id]))
    assert {"keyId", "clientId", "lastUsed", "expires", "revoked"} <= set(stored)
    assert records_from_secret_data(data) == [record]


def _encode(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def test_bad_secret_entries_are_skipped_and_named() -> None:
    key = generate_api_key()
    good = new_record(key, PEPPER, "acme", "acme-clinic", NOW)
    good_json = json.loads(good.model_dump_json(by_alias=True))
    naive = {**good_json, "created": "2026-11-26T12:00:00"}
    data = {
        key.key_id: records_to_secret_data([good])[key.key_id],
        "junk": "not base64 json",
        "bad64": "@@@@",
        "notjson": base64.b64encode(b"{").decode(),
        "bbbbbbbbbbbb": _encode({**good_json}),  # filed under another id
        "cccccccccccc": _encode({**naive, "keyId": "cccccccccccc"}),  # no timezone
        "dddddddddddd": _encode({**good_json, "keyId": "dddddddddddd", "hash": "x"}),
        "number": 7,
    }
    records, bad = decode_secret_data(data)
    assert records == [good]
    assert sorted(bad) == sorted(set(data) - {key.key_id})
    assert records_from_secret_data(None) == []


def test_record_times_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        KeyRecord(
            key_id="abcdefghijkl",
            hash="0" * 64,
            tenant="acme",
            client_id="acme-clinic",
            created=datetime(2026, 1, 1),
        )


# -- the pepper ----------------------------------------------------------------------------------


def test_load_pepper_from_bytes_or_a_mounted_file(tmp_path: Path) -> None:
    raw = b"\x00" * 31 + b"\n"  # binary, ending in a newline that must survive
    path = tmp_path / "pepper"
    path.write_bytes(raw)
    assert load_pepper(raw) == raw
    assert load_pepper(path) == raw
    assert load_pepper(str(path)) == raw


@pytest.mark.parametrize("pepper", [b"", b"short-secret", b"x" * 2000])
def test_load_pepper_refuses_bad_lengths_without_echoing_them(pepper: bytes) -> None:
    with pytest.raises(ValueError, match="bytes") as info:
        load_pepper(pepper)
    if pepper:
        assert pepper.decode()[:8] not in str(info.value)
    with pytest.raises(ValueError):
        KeyStore().set_pepper(pepper)
