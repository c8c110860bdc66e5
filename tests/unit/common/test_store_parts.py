"""The store's pure parts: settings from the environment, key names, the reply of a
reservation as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from paitient_common.settings import Settings, SettingsError, load
from paitient_common.store.keys import (
    bucket_key,
    idempotency_key,
    negative_key,
    period_keys,
    tenant_scope,
)
from paitient_common.store.limits import Bucket, parse_reserved
from paitient_common.store.settings import (
    SharedStoreSettings,
    StoreSettings,
    StoreSettingsError,
    parse_store_url,
)


class StoreOnly(SharedStoreSettings, Settings):
    """The store's settings alone, as the gateway's and the front door's models hold them."""


def store_settings_from_env(env: dict[str, str]) -> StoreSettings | None:
    return load(StoreOnly, env=env).store


def test_no_url_means_no_store() -> None:
    assert store_settings_from_env({}) is None
    assert store_settings_from_env({"PAITIENT_STORE_URL": "  "}) is None


def test_a_url_with_its_password_and_ca_from_their_own_variables(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    settings = store_settings_from_env(
        {
            "PAITIENT_STORE_URL": "rediss://store.paitient-system.svc:6380/2",
            "PAITIENT_STORE_PASSWORD": "s3cret",
            "PAITIENT_STORE_CA_FILE": str(ca),
            "PAITIENT_STORE_TIMEOUT_SECONDS": "0.5",
        }
    )
    assert settings is not None
    assert (settings.host, settings.port, settings.db, settings.tls) == (
        "store.paitient-system.svc", 6380, 2, True,
    )  # fmt: skip
    assert settings.password == "s3cret" and settings.ca_file == ca and settings.timeout == 0.5
    assert settings.describe() == "rediss://store.paitient-system.svc:6380/2"
    assert "s3cret" not in repr(settings)


def test_defaults_port_6379_and_database_0() -> None:
    settings = parse_store_url("redis://10.0.0.7")
    assert (settings.port, settings.db, settings.tls, settings.password) == (6379, 0, False, None)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("store:6379", "must start with redis://"),
        ("redis://host:99999/0", "not a valid URL"),
        ("redis://user:pw@host/0", "carries a password"),
        ("redis://host/abc", "database must be a number"),
        ("redis://host/0?ssl=true", "takes no query"),
        ("redis://ho st/0", "names no valid host"),
    ],
)
def test_a_malformed_url_is_refused_with_what_is_wrong(url: str, said: str) -> None:
    with pytest.raises(StoreSettingsError, match=said) as refused:
        parse_store_url(url)
    assert "pw@" not in str(refused.value)


def test_a_ca_file_needs_tls_and_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StoreSettingsError, match="not rediss"):
        parse_store_url("redis://host/0", ca_file=str(tmp_path))
    with pytest.raises(StoreSettingsError, match="no such file"):
        parse_store_url("rediss://host/0", ca_file=str(tmp_path / "missing.crt"))
    with pytest.raises(SettingsError, match="PAITIENT_STORE_TIMEOUT_SECONDS: Input should be"):
        store_settings_from_env(
            {"PAITIENT_STORE_URL": "redis://h", "PAITIENT_STORE_TIMEOUT_SECONDS": "x"}
        )


def test_key_names_are_prefixed_and_hide_caller_chosen_text() -> None:
    assert bucket_key(tenant_scope("acme"), "tokens") == "paitient:rl:t:acme:tokens"
    keys = period_keys("acme", "2026-12-01T00:00:00Z")
    assert keys.usage == "paitient:usage:acme:2026-12-01T00:00:00Z"
    assert keys.leases == "paitient:leases:acme:2026-12-01T00:00:00Z"
    for key in (negative_key("key", "a:b c"), idempotency_key("acme", "POST /v1/x my:key")):
        assert key.startswith("paitient:") and " " not in key and "my:key" not in key
    assert idempotency_key("acme", "k") != idempotency_key("beta", "k")


def test_a_reservations_reply_as_data() -> None:
    buckets = [Bucket("t:acme", "requests", 60), Bucket("t:acme", "tokens", 1000)]
    refused = parse_reserved([0, 1500, 2, 10, 20, 59, 1000, 3, 58500], buckets)
    assert not refused.admitted and refused.refusing == buckets[1]
    assert refused.wait_seconds == 1.5 and (refused.used, refused.reserved) == (10, 20)
    assert refused.buckets[1][1].remaining == 3 and refused.buckets[1][1].reset_seconds == 58.5
    assert parse_reserved([1, 0, 0, 0, 0, 5, 1, 7, 2], buckets).refusing is None


def test_a_store_that_cannot_work_stops_the_load_and_its_password_is_never_shown() -> None:
    password = "never-shown-in-any-message"
    env = {"PAITIENT_STORE_URL": f"redis://:{password}@store/0"}
    with pytest.raises(SettingsError, match="carries a password") as refused:
        store_settings_from_env(env)
    assert password not in str(refused.value)
    bad_port = {
        "PAITIENT_STORE_URL": "redis://store:notaport/0",
        "PAITIENT_STORE_PASSWORD": password,
    }
    with pytest.raises(SettingsError, match="is not a valid URL") as refused:
        store_settings_from_env(bad_port)
    assert password not in str(refused.value)
