"""The gateway as a process talking to the local cluster's API server: its last UsageReport on
SIGTERM, and callers still served from the last good keys while the API is unreachable (the
link cut by a relay, tests/integration/relay.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from tests.integration.operator_process import OperatorProcess
from tests.integration.relay import relay_to_api_server, relayed_kubeconfig
from tests.integration.stack_helpers import make_tenant
from tests.integration.tcp_proxy import TcpProxy, api_port, kubeconfig_through
from tests.integration.waiting import wait_for
from tests.standins.client import sync_call
from tests.standins.load import ledger_records
from tests.standins.processes import (
    Proc,
    start_cluster_gateway,
    start_gateway,
    start_standin,
    write_keys_file,
)

USAGE_REPORT = ("paitient.ai/v1alpha1", "UsageReport")


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_standin(tmp_path_factory.mktemp("standin"))
    yield proc
    proc.stop()


def _complete(gateway: Proc, headers: dict[str, str]) -> tuple[int, dict[str, int]]:
    answer = sync_call(
        "POST", f"{gateway.url}/v1/completions", {"prompt": "a b", "max_tokens": 3}, headers=headers
    )
    return answer.status, (answer.json().get("usage") if answer.status == 200 else {})


def test_the_gateway_writes_its_usage_report_once_more_on_sigterm(
    operator: OperatorProcess,
    kube: Kube,
    kubeconfig: Path,
    namespace: str,
    standin: Proc,
    tmp_path: Path,
) -> None:
    """The report interval is an hour here: the only write can be the one at shutdown."""
    keys = tmp_path / "keys.json"
    callers = write_keys_file(
        keys, [{"name": "acme", "clientId": "acme-app", "namespace": namespace}]
    )
    env = {
        "PAITIENT_MODELDEPLOYMENT_NAMESPACE": namespace,
        "PAITIENT_POD_NAME": "gateway-sigterm",
        "PAITIENT_USAGE_REPORT_INTERVAL": "3600",
    }
    gateway = start_gateway(
        tmp_path, keys, tmp_path / "ledger", standin.url, env, kubeconfig=kubeconfig
    )
    try:
        usages = [_complete(gateway, callers["acme"].headers()) for _ in range(2)]
        assert [status for status, _ in usages] == [200, 200]
        assert kube.get(*USAGE_REPORT, "gateway-sigterm", namespace=namespace) is None
    finally:
        gateway.stop()  # SIGTERM, then waits for the exit
    assert gateway.popen.returncode == 0
    report = kube.get(*USAGE_REPORT, "gateway-sigterm", namespace=namespace)
    assert report is not None, gateway.output()[-2000:]
    [entry] = report["spec"]["entries"]
    assert entry["tenant"] == "acme" and entry["requests"] == 2
    assert entry["promptTokens"] == sum(u["prompt_tokens"] for _, u in usages)
    assert entry["completionTokens"] == sum(u["completion_tokens"] for _, u in usages)


def test_the_last_report_on_sigterm_is_given_up_on_when_the_api_does_not_answer(
    operator: OperatorProcess,
    kube: Kube,
    kubeconfig: Path,
    namespace: str,
    standin: Proc,
    tmp_path: Path,
) -> None:
    """docs/gateway.md: the write on SIGTERM is limited to 5 s. The API is reached through a
    proxy that then stops moving bytes (a stalled network: nothing arrives, nothing says so):
    the gateway still exits, cleanly, having waited out its limit, and nothing is lost, as the
    ledger holds the usage (its next start reports it)."""
    keys = tmp_path / "keys.json"
    callers = write_keys_file(
        keys, [{"name": "acme", "clientId": "acme-app", "namespace": namespace}]
    )
    env = {
        "PAITIENT_MODELDEPLOYMENT_NAMESPACE": namespace,
        "PAITIENT_POD_NAME": "gateway-stalled",
        "PAITIENT_USAGE_REPORT_INTERVAL": "3600",
    }
    with TcpProxy(api_port(kubeconfig)) as proxy:
        through = kubeconfig_through(kubeconfig, proxy.port, tmp_path / "proxied.kubeconfig")
        gateway = start_gateway(tmp_path, keys, tmp_path / "ledger", standin.url, env,
                                kubeconfig=through)  # fmt: skip
        try:
            assert _complete(gateway, callers["acme"].headers())[0] == 200
            proxy.freeze()
            asked = time.monotonic()
            os.killpg(gateway.popen.pid, signal.SIGTERM)
            try:
                gateway.popen.wait(timeout=60)  # the test's patience, not the bound under test
            except subprocess.TimeoutExpired:
                pytest.fail("the gateway did not exit: its last report to a stalled API held it")
            waited = time.monotonic() - asked
        finally:
            gateway.stop()
    assert gateway.popen.returncode == 0, gateway.output()[-2000:]
    assert waited >= 5 - 0.1  # it did wait out its limit for the report (a lower bound)
    assert kube.get(*USAGE_REPORT, "gateway-stalled", namespace=namespace) is None
    # Nothing is lost: the usage is in the ledger, for the next start to report.
    records = ledger_records(tmp_path / "ledger")
    assert [r["tenant"] for r in records] == ["acme"]


def test_callers_are_served_from_the_last_good_keys_while_the_api_is_unreachable(
    operator: OperatorProcess, kube: Kube, kubeconfig: Path, standin: Proc, tmp_path: Path
) -> None:
    tenant = make_tenant(kube)
    headers = {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}
    # Short watches and a 2 s staleness bound, so the outage soon outlasts what the gateway
    # calls current: it must still serve from what it knows (it only reports itself unready).
    env = {
        "PAITIENT_USAGE_REPORT_INTERVAL": "3600",
        "PAITIENT_WATCH_TIMEOUT_SECONDS": "2-3",
        "PAITIENT_WATCH_READ_GRACE_SECONDS": "1",
        "PAITIENT_CACHE_STALE_SECONDS": "2",
    }
    try:
        with relay_to_api_server(kubeconfig) as relay:
            link = relayed_kubeconfig(kubeconfig, relay, tmp_path / "relayed.kubeconfig")
            gateway = start_cluster_gateway(tmp_path, link, tenant["namespace"], standin.url, env)
            try:
                wait_for(lambda: _complete(gateway, headers)[0] == 200, what="the key known")
                relay.cut()
                wait_for(lambda: relay.refused >= 2, what="the gateway to try the API and fail")
                wait_for(
                    lambda: sync_call("GET", f"{gateway.url}/healthz/ready").status == 503,
                    what="the gateway to find its caches stale",
                )
                # The outage is real and the keys read before it still serve, and still refuse.
                assert [_complete(gateway, headers)[0] for _ in range(3)] == [200, 200, 200]
                stranger = {**headers, "Authorization": "Bearer psk_aaaaaaaaaaaa_" + "A" * 43}
                assert _complete(gateway, stranger)[0] == 401
                # A key made during the outage arrives once the API is back.
                later = admin.create_key(kube, tenant["client_id"], None, "", "paitient-system")[0]
                assert _complete(gateway, {**headers, "Authorization": f"Bearer {later}"})[0] == 401
                relay.restore()
                wait_for(
                    lambda: (
                        _complete(gateway, {**headers, "Authorization": f"Bearer {later}"})[0]
                        == 200
                    ),
                    what="the key made during the outage",
                )
            finally:
                gateway.stop()
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)
