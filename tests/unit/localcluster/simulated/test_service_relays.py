"""The data plane reaches a store at a cluster Service through a relay: which URLs name a
Service, and the gateway's environment pointed at the relay, TLS still checked against the
Service's name."""

from __future__ import annotations

import pytest

from paitient_common.service_dns import ServiceName, service_of
from paitient_common.store.settings import parse_store_url
from paitient_localcluster.simulated.service_relays import relayed_store_env, store_service

STORE = "rediss://pt-paitient-store.paitient-system.svc:6379/0"


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("store.ns.svc", ServiceName("store", "ns")),
        ("store.ns.svc.cluster.local", ServiceName("store", "ns")),
        ("store.ns.svc.cluster.local.", ServiceName("store", "ns")),
        ("store.ns.svc.example.org", None),
        ("redis.clinic.example", None),
        ("10.96.0.7", None),
        ("127.0.0.1", None),
    ],
)
def test_only_a_services_dns_name_names_a_service(host: str, service: ServiceName | None) -> None:
    assert service_of(host) == service


def test_the_store_service_and_port_of_the_gateways_environment() -> None:
    assert store_service({"PAITIENT_STORE_URL": STORE}) == (
        ServiceName("pt-paitient-store", "paitient-system"), 6379,
    )  # fmt: skip
    assert store_service({"PAITIENT_STORE_URL": "redis://store.ns.svc/1"}) == (
        ServiceName("store", "ns"), 6379,
    )  # fmt: skip
    for env in ({}, {"PAITIENT_STORE_URL": "redis://127.0.0.1:6380/0"},
                {"PAITIENT_STORE_URL": "redis://store.ns.svc:99999/0"}):  # fmt: skip
        assert store_service(env) is None


def test_a_relayed_tls_store_is_dialled_locally_and_verified_by_the_services_name() -> None:
    env = {"PAITIENT_STORE_URL": STORE, "PAITIENT_STORE_CA_FILE": "/x/ca.crt", "OTHER": "1"}
    moved = relayed_store_env(env, 40123)
    assert moved == {
        **env,
        "PAITIENT_STORE_URL": "rediss://127.0.0.1:40123/0",
        "PAITIENT_STORE_SERVER_NAME": "pt-paitient-store.paitient-system.svc",
    }
    settings = parse_store_url(
        moved["PAITIENT_STORE_URL"], server_name=moved["PAITIENT_STORE_SERVER_NAME"]
    )
    assert (settings.host, settings.port, settings.server_name) == (
        "127.0.0.1", 40123, "pt-paitient-store.paitient-system.svc",
    )  # fmt: skip


def test_a_plain_store_keeps_its_user_and_database_and_gets_no_server_name() -> None:
    moved = relayed_store_env({"PAITIENT_STORE_URL": "redis://app@store.ns.svc:6380/3"}, 40000)
    assert moved == {"PAITIENT_STORE_URL": "redis://app@127.0.0.1:40000/3"}
