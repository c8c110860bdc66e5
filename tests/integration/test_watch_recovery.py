"""Watches that die are noticed, on the real API server: the front door and a gateway reach it
through a TCP proxy on 127.0.0.1 that this test controls.

- Every connection dropped mid-stream: both restart their watches (counted), and a key created
  afterwards works on its first request; a revocation after that still reaches them.
- Every connection stalled (bytes held, nothing closed): the watches are restarted after their
  read timeout (counted as ``stalled``), readiness fails while the caches are older than their
  bound, and comes back with the connection; a key created then works on its first request.
- A front door that may list key Secrets but not watch them: every new key still works on its
  first request, read through from the API.

Short watch settings make the bounds small: the server ends each watch after 2-3 s, a watch
silent for 1 s longer is stalled, a cache older than 6 s is stale.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_localcluster.controlplane.kubeconfig import write_kubeconfig
from paitient_localcluster.simulated.sa_kubeconfig import mint_token, service_account_kubeconfig
from tests.integration.frontdoor_process import ApiProcess, call, client_trust
from tests.integration.stack_helpers import make_tenant
from tests.integration.tcp_proxy import TcpProxy, api_port, kubeconfig_through
from tests.integration.waiting import wait_for
from tests.standins.processes import Proc, start_cluster_gateway, start_standin

SYSTEM = "paitient-system"
SHORT_WATCHES = {
    "PAITIENT_WATCH_TIMEOUT_SECONDS": "2-3",
    "PAITIENT_WATCH_READ_GRACE_SECONDS": "1",
    "PAITIENT_CACHE_STALE_SECONDS": "6",
}
RESTART = re.compile(r'paitient_cache_watch_restarts_total\{cache="(\w+)",reason="(\w+)"\} (\S+)')
READ_THROUGH = re.compile(
    r'paitient_cache_read_through_total\{outcome="(\w+)",read="(\w+)"\} (\S+)'
)


def _open(url: str, timeout: float) -> Any:
    """GET ``url``; the test front door serves TLS from the session's CA, trusted as ``call``
    trusts it."""
    context = client_trust() if url.startswith("https:") else None
    return urllib.request.urlopen(url, timeout=timeout, context=context)


def _metrics(url: str) -> str:
    with _open(f"{url}/metrics", 10) as response:
        return str(response.read().decode())


def restarts(url: str, reason: str) -> float:
    """Watch restarts of every cache for ``reason``."""
    return sum(float(n) for _, r, n in RESTART.findall(_metrics(url)) if r == reason)


def _ready(url: str) -> bool:
    try:
        with _open(url, 5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Proxied:
    proxy: TcpProxy
    front_door: ApiProcess
    gateway: Proc
    tenant: dict[str, str]

    @property
    def front_door_url(self) -> str:
        return self.front_door.base_url.removesuffix("/v1")

    def ready(self) -> tuple[bool, bool]:
        return _ready(f"{self.front_door_url}/readyz"), _ready(f"{self.gateway.url}/healthz/ready")

    def first_requests(self, key: str) -> tuple[int, int]:
        """(front door, gateway) status of a key's first request at each."""
        headers = {"Authorization": f"Bearer {key}", "X-Client-ID": self.tenant["client_id"]}
        front = call("GET", f"{self.front_door.base_url}/subscription", headers=headers)[0]
        body = {"model": "x", "prompt": "ping", "max_tokens": 1}
        gateway = call("POST", f"{self.gateway.url}/v1/completions", body, headers)[0]
        return front, gateway


@pytest.fixture(scope="module")
def proxied(
    stack: ApiProcess, kube: Kube, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxied]:
    """A front door and a gateway whose only way to the API server is the proxy."""
    tmp = tmp_path_factory.mktemp("proxied")
    tenant = make_tenant(kube)
    standin = start_standin(tmp)
    with TcpProxy(api_port(kubeconfig)) as proxy:
        through = kubeconfig_through(kubeconfig, proxy.port, tmp / "proxied.kubeconfig")
        front_door = ApiProcess(through, tmp / "api.log", env=SHORT_WATCHES)
        front_door.start()
        gateway = None
        try:
            gateway = start_cluster_gateway(
                tmp, through, tenant["namespace"], standin.url, SHORT_WATCHES
            )
            yield Proxied(proxy, front_door, gateway, tenant)
        finally:
            proxy.thaw()
            if gateway is not None:
                gateway.stop()
            front_door.stop()
            standin.stop()
            admin.delete_tenant(kube, tenant["name"], force=True)


def _new_key(kube: Kube, tenant: dict[str, str]) -> str:
    return str(admin.create_key(kube, tenant["client_id"], None, "after the fault", SYSTEM)[0])


def test_dropped_watches_are_restarted_and_a_key_made_afterwards_works_at_once(
    proxied: Proxied, kube: Kube
) -> None:
    urls = (proxied.front_door_url, proxied.gateway.url)
    before = [restarts(url, "disconnected") for url in urls]
    assert proxied.proxy.drop() > 0
    wait_for(
        lambda: all(restarts(u, "disconnected") > b for u, b in zip(urls, before, strict=True)),
        timeout=30, what="both to count their dropped watches",
    )  # fmt: skip
    key = _new_key(kube, proxied.tenant)
    assert proxied.first_requests(key) == (200, 200)
    # The watches deliver again: a revocation reaches both without anything being restarted.
    admin.revoke_key(kube, key.split("_")[1], SYSTEM)
    wait_for(lambda: proxied.first_requests(key) == (401, 401), timeout=10, what="the revoke")
    assert proxied.ready() == (True, True)


def test_stalled_watches_are_restarted_and_readiness_fails_while_the_caches_are_stale(
    proxied: Proxied, kube: Kube
) -> None:
    urls = (proxied.front_door_url, proxied.gateway.url)
    before = [restarts(url, "stalled") for url in urls]
    assert proxied.ready() == (True, True)
    proxied.proxy.freeze()
    try:
        wait_for(
            lambda: all(restarts(u, "stalled") > b for u, b in zip(urls, before, strict=True)),
            timeout=30, what="both to notice their stalled watches",
        )  # fmt: skip
        wait_for(lambda: proxied.ready() == (False, False), timeout=30, what="readiness to fail")
    finally:
        proxied.proxy.thaw()
    wait_for(lambda: proxied.ready() == (True, True), timeout=60, what="readiness back")
    key = _new_key(kube, proxied.tenant)
    assert proxied.first_requests(key) == (200, 200)


# -- a front door that cannot watch key Secrets: the read-through alone makes new keys work ----


def _grant(kube: Kube, name: str, rules: list[dict[str, Any]], namespace: str | None) -> None:
    kind, binding = ("Role", "RoleBinding") if namespace else ("ClusterRole", "ClusterRoleBinding")
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    subject = {"kind": "ServiceAccount", "name": name, "namespace": SYSTEM}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": meta,
            "rules": rules,
        }
    )
    kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding, "metadata": meta,
                 "roleRef": ref, "subjects": [subject]})  # fmt: skip


@pytest.fixture
def unwatching_front_door(
    stack: ApiProcess, kube: Kube, kubeconfig: Path, tmp_path: Path
) -> Iterator[ApiProcess]:
    """A front door whose identity may get and list key Secrets, not watch them."""
    name = "test-fd-no-secret-watch"
    rbac = "rbac.authorization.k8s.io/v1"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": SYSTEM},
        }
    )
    try:
        _grant(kube, name, [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
        ], SYSTEM)  # fmt: skip
        _grant(kube, name, [
            {"apiGroups": ["paitient.ai"], "resources": ["tenants"], "verbs": ["get", "list", "watch"]},
        ], None)  # fmt: skip
        token = mint_token(kube, SYSTEM, name, 3600)
        admin_doc = yaml.safe_load(kubeconfig.read_text())
        doc = service_account_kubeconfig(admin_doc, kubeconfig, token.token, SYSTEM, name)
        own = write_kubeconfig_path(tmp_path / "no-watch.kubeconfig", doc)
        api = ApiProcess(own, tmp_path / "api.log")
        api.start()
        yield api
        api.stop()
    finally:
        for kind in ("ClusterRoleBinding", "ClusterRole"):
            kube.delete(rbac, kind, name)
        for kind in ("RoleBinding", "Role"):
            kube.delete(rbac, kind, name, namespace=SYSTEM)
        kube.delete("v1", "ServiceAccount", name, namespace=SYSTEM)


def write_kubeconfig_path(path: Path, doc: dict[str, Any]) -> Path:
    write_kubeconfig(path, doc)
    return path


def test_new_keys_work_on_their_first_request_where_the_key_watch_is_refused(
    unwatching_front_door: ApiProcess, kube: Kube
) -> None:
    api = unwatching_front_door
    base = api.base_url.removesuffix("/v1")
    tenant = make_tenant(kube)
    try:
        statuses = []
        for i in range(10):
            key = admin.create_key(kube, tenant["client_id"], None, f"read through {i}", SYSTEM)[0]
            headers = {"Authorization": f"Bearer {key}", "X-Client-ID": tenant["client_id"]}
            statuses.append(call("GET", f"{api.base_url}/subscription", headers=headers)[0])
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)
    assert statuses == [200] * 10
    text = _metrics(base)
    assert restarts(base, "error") >= 1  # the refused watch, retried with backoff
    found = sum(float(n) for o, r, n in READ_THROUGH.findall(text) if (r, o) == ("key", "found"))
    assert found >= 1, text
