"""API keys: format, storage, and a verification that tells nobody why it failed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from paitient_common import apikeys
from paitient_common.apikeys import (
    PUBLIC_MESSAGE,
    AuthFailure,
    KeyStore,
    TenantInfo,
    VerifiedIdentity,
    generate_api_key,
    new_record,
    parse_api_key,
    parse_bearer,
    records_from_secret_data,
    records_to_secret_data,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PEPPER = b"p" * 32
ACME = TenantInfo("acme", "acme-clinic", "tenant-acme", "standard")
BETA = TenantInfo("beta", "beta-health", "tenant-beta", "free")


@pytest.fixture
def store() -> tuple[KeyStore, str, str]:
    acme_key, beta_key = generate_api_key(), generate_api_key()
    store = KeyStore(PEPPER)
    store.replace_records(
        [
            new_record(acme_key, PEPPER, "acme", "acme-clinic", NOW),
            new_record(beta_key, PEPPER, "beta", "beta-health", NOW),
        ]
    )
    store.replace_tenants([ACME, BETA])
    return store, acme_key.plaintext, beta_key.plaintext


def test_keys_are_prefixed_high_entropy_and_distinct() -> None:
    keys = {generate_api_key().plaintext for _ in range(200)}
    assert len(keys) == 200
    key = generate_api_key()
    assert key.plaintext.startswith(f"psk_{key.key_id}_")
    assert parse_api_key(key.plaintext) == (key.key_id, key.secret)
    assert len(key.secret) == 43  # 32 bytes, base64url


def test_the_right_key_with_its_client_id_is_accepted(store: tuple[KeyStore, str, str]) -> None:
    keys, acme, _ = store
    result = keys.verify(f"Bearer {acme}", "acme-clinic", NOW)
    assert isinstance(result, VerifiedIdentity)
    assert result.tenant == ACME and not result.suspended


@pytest.mark.parametrize(
    ("authorization", "client_id", "reason"),
    [
        (None, "acme-clinic", "missing"),
        ("", "acme-clinic", "missing"),
        ("Bearer ACME", None, "missing"),
        ("Basic abc", "acme-clinic", "missing"),
        ("Bearer not-a-key", "acme-clinic", "malformed"),
        ("Bearer " + "x" * 5000, "acme-clinic", "missing"),
        ("Bearer psk_aaaaaaaaaaaa_" + "A" * 43, "acme-clinic", "unknown_key"),
        ("Bearer BETA", "acme-clinic", "wrong_client"),
        ("Bearer ACME", "beta-health", "wrong_client"),
        ("Bearer ACME", "nobody", "wrong_client"),
    ],
)
def test_every_failure_looks_the_same(
    store: tuple[KeyStore, str, str], authorization: str | None, client_id: str | None, reason: str
) -> None:
    keys, acme, beta = store
    if authorization:
        authorization = authorization.replace("ACME", acme).replace("BETA", beta)
    result = keys.verify(authorization, client_id, NOW)
    assert isinstance(result, AuthFailure)
    assert result.reason == reason
    assert result.message == PUBLIC_MESSAGE


def test_a_wrong_secret_for_a_known_key_id_fails(store: tuple[KeyStore, str, str]) -> None:
    keys, acme, _ = store
    key_id, _secret = parse_api_key(acme) or ("", "")
    forged = f"psk_{key_id}_{'B' * 43}"
    result = keys.verify(f"Bearer {forged}", "acme-clinic", NOW)
    assert isinstance(result, AuthFailure) and result.reason == "wrong_secret"


def test_expired_and_revoked_keys_fail() -> None:
    key = generate_api_key()
    expired = new_record(
        key, PEPPER, "acme", "acme-clinic", NOW - timedelta(days=2), expires=NOW - timedelta(days=1)
    )
    store = KeyStore(PEPPER)
    store.replace_tenants([ACME])
    store.replace_records([expired])
    assert store.verify(f"Bearer {key.plaintext}", "acme-clinic", NOW) == AuthFailure("expired")
    revoked = new_record(key, PEPPER, "acme", "acme-clinic", NOW).model_copy(
        update={"revoked": NOW}
    )
    store.replace_records([revoked])
    assert store.verify(f"Bearer {key.plaintext}", "acme-clinic", NOW) == AuthFailure("revoked")


def test_rotation_keeps_both_keys_valid_until_the_old_one_is_revoked() -> None:
    old, new = generate_api_key(), generate_api_key()
    store = KeyStore(PEPPER)
    store.replace_tenants([ACME])
    store.replace_records([new_record(k, PEPPER, "acme", "acme-clinic", NOW) for k in (old, new)])
    assert all(
        isinstance(store.verify(f"Bearer {k.plaintext}", "acme-clinic", NOW), VerifiedIdentity)
        for k in (old, new)
    )


def test_suspended_tenants_verify_but_say_so(store: tuple[KeyStore, str, str]) -> None:
    keys, acme, _ = store
    keys.replace_tenants(
        [TenantInfo("acme", "acme-clinic", "tenant-acme", "standard", suspended=True)]
    )
    result = keys.verify(f"Bearer {acme}", "acme-clinic", NOW)
    assert isinstance(result, VerifiedIdentity) and result.suspended


def test_an_unknown_key_id_still_costs_an_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = apikeys.hash_secret
    monkeypatch.setattr(apikeys, "hash_secret", lambda p, k, s: calls.append(k) or real(p, k, s))
    store = KeyStore(PEPPER)
    store.verify("Bearer psk_aaaaaaaaaaaa_" + "A" * 43, "acme-clinic", NOW)
    assert calls == ["aaaaaaaaaaaa"]


def test_the_plaintext_is_never_stored() -> None:
    key = generate_api_key()
    record = new_record(key, PEPPER, "acme", "acme-clinic", NOW)
    data = records_to_secret_data([record])
    assert key.secret not in json.dumps(
        record.model_dump(mode="json")
    ) and key.secret not in json.dumps(data)
    assert key.plaintext not in repr(key)
    assert records_from_secret_data(data) == [record]
    assert records_from_secret_data({"junk": "not base64 json"}) == []


def test_a_different_pepper_verifies_nothing() -> None:
    key = generate_api_key()
    store = KeyStore(b"q" * 32)
    store.replace_tenants([ACME])
    store.replace_records([new_record(key, PEPPER, "acme", "acme-clinic", NOW)])
    assert store.verify(f"Bearer {key.plaintext}", "acme-clinic", NOW) == AuthFailure(
        "wrong_secret"
    )


def test_bearer_parsing() -> None:
    assert parse_bearer("Bearer abc") == "abc"
    assert parse_bearer("bearer abc") == "abc"
    assert parse_bearer("Bearer abc, Bearer def") is None
    assert parse_bearer("Bearer") is None
    assert parse_bearer("Token abc") is None
