"""A ``rediss://`` store: the gateway's client verifies the server against the CA in
``PAITIENT_STORE_CA_FILE`` and reserves through it; without that CA it refuses the server and
says why (the TLS handshake), never falling back to plain text. Reached through an address its
certificate does not name (a relay), it is verified against ``PAITIENT_STORE_SERVER_NAME``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from paitient_common.store.connection import Store, StoreUnavailable
from paitient_common.store.limits import reserve
from paitient_common.store.settings import parse_store_url
from tests.store.burst import period
from tests.store.gateways import gateways, write_tenant
from tests.store.limit_load import LimitLoad
from tests.storeserver import RedisServer


@pytest.fixture
def tls_server(tmp_path: Path) -> RedisServer:
    server = RedisServer(tmp_path / "redis-tls", tls=True).start()
    yield server  # type: ignore[misc]
    server.stop()


def test_a_tls_store_is_verified_against_its_ca_and_used(
    tmp_path: Path, tls_server: RedisServer
) -> None:
    async def direct() -> int:
        store = Store(parse_store_url(tls_server.url, tls_server.password, str(tls_server.ca_file)))
        try:
            return (await reserve(store, period("tls"), "r", 5, 100, 0, [])).status
        finally:
            await store.close()

    assert asyncio.run(direct()) == 1
    keys = tmp_path / "keys.json"
    caller = write_tenant(keys, tokens_per_minute=10**6, usage_limit=50)
    with gateways(tmp_path, keys, 1, tls_server.env()) as (_, procs):
        load = LimitLoad([f"{procs[0].url}/v1/completions"], caller.headers(), clients=4)
        asyncio.run(load.run_for(attempts=4))
    assert 0 < load.tokens <= 50 and load.statuses[429] > 0


def test_without_its_ca_the_server_is_refused_and_the_handshake_named(
    tls_server: RedisServer,
) -> None:
    async def attempt() -> str:
        store = Store(parse_store_url(tls_server.url, tls_server.password))
        try:
            await store.ping()
        except StoreUnavailable as exc:
            return str(exc)
        finally:
            await store.close()
        return "answered"

    said = asyncio.run(attempt())
    assert "TLS handshake" in said and "CERTIFICATE_VERIFY_FAILED" in said
    assert tls_server.password not in said


def test_a_store_behind_a_relay_is_verified_against_its_server_name(tmp_path: Path) -> None:
    """The local data plane's case: the certificate names only the Service, the gateway dials
    127.0.0.1. With the Service's name it verifies and answers; without it, or with another
    name, the handshake fails, and no password is in the reason."""
    service = "store.paitient-system.svc"
    server = RedisServer(tmp_path / "redis-svc", tls=True, certificate_names=(service,)).start()

    async def attempt(server_name: str | None) -> str:
        settings = parse_store_url(
            server.url, server.password, str(server.ca_file), server_name=server_name
        )
        store = Store(settings)
        try:
            await store.ping()
        except StoreUnavailable as exc:
            return str(exc)
        finally:
            await store.close()
        return "answered"

    try:
        assert asyncio.run(attempt(service)) == "answered"
        for name in (None, "other.paitient-system.svc"):
            said = asyncio.run(attempt(name))
            assert "TLS handshake" in said and "CERTIFICATE_VERIFY_FAILED" in said, said
            assert server.password not in said
    finally:
        server.stop()
