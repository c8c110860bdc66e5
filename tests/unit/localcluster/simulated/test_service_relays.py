"""The data plane reaches a store at a cluster Service through a relay: which URLs name a
Service, the gateway's environment pointed at the relay (TLS still checked against the
Service's name), and one relay per Service, kept on its port."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from paitient_common.kubeapi import Kube
from paitient_common.service_dns import ServiceName, service_of
from paitient_common.store.settings import parse_store_url
from paitient_localcluster.simulated.service_relays import (
    ServiceRelays,
    relayed_store_env,
    store_service,
)
from tests.prerequisites import missing

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


class _Services:
    """The API's Services, as data (the relays' own logic is under test, not the API)."""

    def __init__(self) -> None:
        self.services: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, _api: str, _kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self.services.get((namespace, name))


def _echo_server() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.sendall(conn.recv(64))

    threading.Thread(target=serve, daemon=True).start()
    return server


def _echo(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"ping")
        return sock.recv(64)


def test_one_relay_per_service_restarted_on_the_same_port(tmp_path: Path) -> None:
    """A real relay process; the namespace it enters is this process's own, so "inside" is
    the host's loopback here, where an echo server plays the Service's ClusterIP."""
    if os.geteuid() != 0:
        missing("the relay enters a network namespace (root)")
    server = _echo_server()
    services = _Services()
    store = ServiceName("store", "ns")
    services.services[("ns", "store")] = {"spec": {"clusterIP": "127.0.0.1"}}
    relays = ServiceRelays(
        cast(Kube, services), Path(f"/proc/{os.getpid()}/ns/net"), tmp_path / "logs"
    )
    try:
        port = relays.local_port(store, server.getsockname()[1])
        assert _echo(port) == b"ping"
        assert relays.local_port(store, server.getsockname()[1]) == port  # shared
        (relay,) = relays.relays.values()
        relay.process.kill()
        relay.process.wait()
        assert relays.refresh() == []
        assert _echo(port) == b"ping"  # again, on the port the gateways were given
        del services.services[("ns", "store")]
        assert relays.refresh() == ["relay to ns/store: Service ns/store does not exist (yet)"]
    finally:
        relays.stop()
        server.close()
    assert all(r.process.poll() is not None for r in relays.relays.values())
