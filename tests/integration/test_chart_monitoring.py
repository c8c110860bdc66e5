"""The chart's monitoring and exposure on the local cluster, for real.

The Prometheus Operator's and the Gateway API's own CRDs are installed, so the API server itself
validates the chart's ServiceMonitor, PodMonitors, PrometheusRule, HTTPRoute, BackendTLSPolicy
and TLSRoute. A real Prometheus (Debian's) on 127.0.0.1 scrapes what those monitors name: the
front door pod over HTTPS (its certificate issued by the operator, verified against
paitient-ca-bundle for the Service's name) and the operator pod, both through relays into the
cluster's namespace, and a model's gateway on its metrics port (the local data plane runs it on
the host). It loads the chart's alert rules; pushing a tenant past 90% of its tier's tokens makes
PaitientTenantUsageNearLimit go pending. The admin CLI does its whole job with the chart's admin
role alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.resources.install import CRD, install_crds
from paitient_common.tls import client_context
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane.kubeconfig import write_kubeconfig
from paitient_localcluster.host.processes import free_port, wait_http_ok
from paitient_localcluster.host.relay import PortMapping, relay_argv
from paitient_localcluster.simulated.sa_kubeconfig import mint_token, service_account_kubeconfig
from paitient_localcluster.stack.chart import CHART
from paitient_localcluster.upstream.crd_modules import GATEWAY_API, PROMETHEUS_OPERATOR
from tests.integration.chart_release import (
    KUBECTL,
    Release,
    installed_release,
    ready_pod,
    ready_pods,
    run,
)
from tests.integration.gateway_tls import Gateway, ca_bundle, route_entry
from tests.integration.prometheus_server import Prometheus, running_prometheus
from tests.integration.stack_helpers import tenant_ready
from tests.integration.waiting import wait_for
from tests.prerequisites import missing

REPO = Path(__file__).resolve().parents[2]
ALERTS = CHART / "files" / "alerts.yaml"
TOKEN_LIMIT = 200
TIERS = {
    "standard": {"tokenLimit": 10_000_000, "requestsPerMinute": 600, "tokensPerMinute": 200_000,
                 "maxDeployments": 5, "maxGpus": 8, "gpusAllowed": True},
    # A tier a few requests fill: the usage alert's condition, reached for real.
    "tiny": {"tokenLimit": TOKEN_LIMIT, "requestsPerMinute": 600, "tokensPerMinute": 100_000,
             "maxDeployments": 1, "maxGpus": 1, "gpusAllowed": True},
}  # fmt: skip


@dataclass(frozen=True)
class Monitored:
    release: Release
    cli_kubeconfig: Path  # a ServiceAccount in the admin group's namespace: the CLI's identity


@contextlib.contextmanager
def their_crds(kube: Kube) -> Iterator[None]:
    """The Prometheus Operator's and the Gateway API's CRDs in the cluster, removed afterwards
    unless they were there before."""
    made = []
    for module in (PROMETHEUS_OPERATOR, GATEWAY_API):
        directory = module.fetch()
        for path in sorted(directory.glob("*.yaml")):
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            if kube.get(*CRD, name) is None:
                made.append(name)
        install_crds(kube, directory)
    try:
        yield
    finally:
        for name in made:
            kube.delete(*CRD, name)


@pytest.fixture(scope="module")
def monitored(
    kubeconfig: Path, kube: Kube, dataplane: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    if os.environ.get("PAITIENT_TEST_KUBECONFIG"):
        missing("reaches the pods through the local cluster's namespace")
    work = tmp_path_factory.mktemp("monitored")
    admins = f"paitient-cli-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": admins}})
    values = {
        "operator": {
            "config": {
                "tiers": TIERS,
                "gateway": {"metricsPort": 9090},
                "monitoringNamespaces": ["monitoring"],
            }
        },
        "monitoring": {
            "labels": {"release": "kube-prometheus-stack"},
            "serviceMonitor": {"enabled": True},
            "podMonitors": {"operator": {"enabled": True}, "gateways": {"enabled": True}},
            "prometheusRule": {"enabled": True},
        },
        "frontDoor": {
            "httpRoute": {"enabled": True, "parentRefs": [{"name": "public", "namespace": "gw"}]},
            "tlsRoute": {
                "enabled": True,
                "parentRefs": [{"name": "public", "namespace": "gw", "sectionName": "tls"}],
                "hostnames": ["api.paitient.test"],
            },
        },
        # Every ServiceAccount of that namespace is an administrator.
        "adminRole": {
            "subjects": [
                {
                    "kind": "Group",
                    "name": f"system:serviceaccounts:{admins}",
                    "apiGroup": "rbac.authorization.k8s.io",
                }
            ]
        },
    }
    values_file = work / "values.json"
    values_file.write_text(json.dumps(values))
    try:
        with (
            their_crds(kube),
            installed_release(kubeconfig, kube, "m", ("--values", str(values_file))) as release,
        ):
            kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "admin", "namespace": admins}})  # fmt: skip
            token = mint_token(kube, admins, "admin", 3600)
            document = yaml.safe_load(kubeconfig.read_text())
            cli = write_kubeconfig(
                work / "cli.kubeconfig",
                service_account_kubeconfig(document, kubeconfig, token.token, admins, "admin"),
            )
            yield Monitored(release, cli)
    finally:
        kube.delete("v1", "Namespace", admins)


def test_the_api_server_accepts_the_monitors_the_rule_and_the_routes(
    monitored: Monitored, kube: Kube
) -> None:
    release = monitored.release
    ns = release.namespace
    found = run(
        KUBECTL, "get", "-n", ns, "-o", "name",
        "servicemonitors.monitoring.coreos.com,podmonitors.monitoring.coreos.com,"
        "prometheusrules.monitoring.coreos.com,httproutes.gateway.networking.k8s.io,"
        "backendtlspolicies.gateway.networking.k8s.io,tlsroutes.gateway.networking.k8s.io",
        kubeconfig=release.kubeconfig,
    ).split()  # fmt: skip
    assert sorted(found) == sorted([
        f"servicemonitor.monitoring.coreos.com/{release.api}",
        f"podmonitor.monitoring.coreos.com/{release.operator}",
        f"podmonitor.monitoring.coreos.com/{release.name}-paitient-gateways",
        f"prometheusrule.monitoring.coreos.com/{release.name}-paitient-alerts",
        f"httproute.gateway.networking.k8s.io/{release.api}",
        f"backendtlspolicy.gateway.networking.k8s.io/{release.api}",
        f"tlsroute.gateway.networking.k8s.io/{release.api}",
    ])  # fmt: skip
    # The front door's certificate, issued by the operator, names the passthrough host too.
    secret = kube.get("v1", "Secret", f"{release.api}-tls", namespace=ns)
    assert secret is not None and secret["type"] == "kubernetes.io/tls"


@contextlib.contextmanager
def relays(kubeconfig: Path, mappings: list[PortMapping]) -> Iterator[None]:
    """Host 127.0.0.1 ports relayed into the cluster's network namespace (as `make up` does)."""
    cluster = LocalCluster(log=lambda _m: None)
    assert cluster.kubeconfig == kubeconfig
    process = subprocess.Popen(
        relay_argv(cluster.namespaces.netns_path, mappings),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


def _not_after(kube: Kube, secret: str, namespace: str) -> float:
    """The expiry the operator wrote on a certificate Secret it issued, as a Unix time."""
    found = kube.get("v1", "Secret", secret, namespace=namespace) or {}
    stamp = found["metadata"]["annotations"]["paitient.ai/not-after"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _value(prometheus: Prometheus, expr: str) -> float | None:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_front_door_operator_and_gateway_and_the_usage_alert_goes_pending(
    monitored: Monitored, kube: Kube, kubeconfig: Path, dataplane: Path, tmp_path: Path
) -> None:
    release, ns = monitored.release, monitored.release.namespace
    name = f"mon{uuid.uuid4().hex[:6]}"
    client_id, tenant_ns = f"{name}-clinic", f"tenant-{name}"
    admin.create_tenant(kube, name, client_id, "tiny", None, set(TIERS))
    try:
        wait_for(lambda: tenant_ready(kube, name), timeout=60, what="tenant Ready")
        wait_for(lambda: kube.get("v1", "Secret", f"paitient-api-keys-{name}", namespace=ns),
                 what="the tenant's key Secret")  # fmt: skip
        key = admin.create_key(kube, client_id, None, "", ns)[0]
        kube.create({
            "apiVersion": "paitient.ai/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "model", "namespace": tenant_ns},
            "spec": {"model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}, "useGpu": True,
                     "gpu": {"count": 1},
                     "storage": {"size": "5Gi", "storageClassName": "encrypted-local"}},
        })  # fmt: skip
        route = route_entry(dataplane, f"{tenant_ns}/model", timeout=120)
        metrics_url = route["replicas"][0].get("metricsUrl")
        assert metrics_url, "the gateway has its own metrics port (gateway.metricsPort)"
        ca = ca_bundle(kube, ns)
        (ca_file := tmp_path / "ca.pem").write_text(ca)
        # Both operators are scraped, as the chart's PodMonitor has it: the leader reports the
        # deployments and tenants, the standby only that it stands by.
        api_pod, operator_pods = (
            ready_pod(kube, release, "api"),
            ready_pods(kube, release, "operator"),
        )
        assert api_pod is not None and len(operator_pods) == 2, operator_pods
        service = kube.get("v1", "Service", release.api, namespace=ns) or {}
        api_port, operator_ports = free_port(), [free_port(), free_port()]
        mappings = [
            PortMapping(api_port, service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]),
            *[PortMapping(port, pod["status"]["podIP"], 8081)
              for port, pod in zip(operator_ports, operator_pods, strict=True)],
        ]  # fmt: skip
        # What the chart's monitors prescribe (port, scheme, path, TLS trust, target labels).
        scrape = [
            {"job_name": "front-door", "scheme": "https", "metrics_path": "/metrics",
             "tls_config": {"ca_file": str(ca_file), "server_name": f"{release.api}.{ns}.svc"},
             "static_configs": [{"targets": [f"127.0.0.1:{api_port}"],
                                 "labels": {"namespace": ns, "pod": api_pod["metadata"]["name"]}}]},
            {"job_name": "operator", "scheme": "http", "metrics_path": "/metrics",
             "static_configs": [{"targets": [f"127.0.0.1:{port}"],
                                 "labels": {"namespace": ns, "pod": pod["metadata"]["name"]}}
                                for port, pod in zip(operator_ports, operator_pods, strict=True)]},
            {"job_name": "gateways", "scheme": "http", "metrics_path": "/metrics",
             "static_configs": [{"targets": [metrics_url.removeprefix("http://")],
                                 "labels": {"namespace": tenant_ns, "modeldeployment": "model",
                                            "pod": "model-local"}}]},
        ]  # fmt: skip
        with relays(kubeconfig, mappings), running_prometheus(scrape, [ALERTS]) as prometheus:
            assert wait_http_ok(
                f"https://127.0.0.1:{api_port}/readyz", 30, context=client_context(ca)
            ), "the front door through its relay"
            up = wait_for(
                lambda: {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up")}
                if len(prometheus.query("up == 1")) == 4 else None,
                timeout=60, what="all four targets up",
            )  # fmt: skip
            assert up == {"front-door": "1", "operator": "1", "gateways": "1"}

            def rules() -> list[dict[str, Any]]:
                return [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]

            wait_for(lambda: all(r["health"] == "ok" for r in rules()), what="rules evaluated")
            assert len(rules()) == 11
            # The front door's series: the certificate it serves is the one the operator issued.
            for job, secret_name, where in (
                ("front-door", f"{release.api}-tls", ns),
                ("gateways", "model-tls", tenant_ns),  # the model's serving certificate
            ):
                expiry = f'paitient_tls_certificate_expiry_timestamp_seconds{{job="{job}"}}'
                assert _value(prometheus, expiry) == _not_after(kube, secret_name, where), job
            assert _value(prometheus, 'paitient_cache_objects{job="front-door",cache="tenants"}')
            assert _value(prometheus, "sum(paitient_operator_leader)") == 1
            ready = prometheus.query('paitient_operator_model_deployments{phase="Ready"}')
            assert [float(r["value"][1]) for r in ready] == [1], ready  # the leader's alone
            usage = f'paitient_operator_tenant_usage_tokens{{tenant="{name}"}}'
            assert wait_for(lambda: prometheus.query(usage), what="the tenant's usage series")
            assert not [a for a in prometheus.alerts("PaitientTenantUsageNearLimit")
                        if a["labels"]["tenant"] == name]  # fmt: skip
            # Push the tenant past 90% of its tokens through the gateway, as clients would.
            gateway = Gateway(route["url"], route["serverName"], client_context(ca))
            headers = {"Authorization": f"Bearer {key}", "X-Client-ID": client_id}
            body = {"model": "x", "prompt": "hello there, how are you", "max_tokens": 16}
            statuses = []
            for _ in range(60):
                time.sleep(0.5)  # the usage reaches the Tenant every few seconds: overshoot less
                status = gateway.call("POST", "/v1/completions", body, headers)[0]
                statuses.append(status)
                if status == 429:
                    break
                used = (kube.get("paitient.ai/v1alpha1", "Tenant", name) or {}).get("status", {})
                if int(used.get("currentUsage", 0)) >= 0.9 * TOKEN_LIMIT:
                    break
            assert 200 in statuses
            assert wait_for(
                lambda: _value(prometheus, usage) and _value(prometheus, usage) >= 0.9 * TOKEN_LIMIT,
                timeout=60, what="the usage Prometheus sees past 90% of the limit",
            )  # fmt: skip

            def near_limit() -> list[str]:
                alerts = prometheus.alerts("PaitientTenantUsageNearLimit")
                return [a["state"] for a in alerts if a["labels"]["tenant"] == name]

            # Pending: the rule holds it 5 minutes before it fires.
            assert wait_for(near_limit, timeout=30, what="the alert pending") == ["pending"]
            # The gateway's own series, through the PodMonitor's labels.
            answered = (
                f'sum(paitient_gateway_requests_total{{namespace="{tenant_ns}",'
                f'modeldeployment="model",route="/v1/completions",status="200"}})'
            )
            wait_for(lambda: _value(prometheus, answered) == statuses.count(200),
                     what="every answered request counted")  # fmt: skip
    finally:
        admin.delete_tenant(kube, name, force=True)


def test_the_admin_cli_does_its_whole_job_with_the_admin_role_alone(
    monitored: Monitored, kube: Kube
) -> None:
    """`paitient tenants` and `paitient keys`, run as a ServiceAccount whose only rights are the
    chart's admin ClusterRole and Role (bound through adminRole.subjects)."""
    ns, name = monitored.release.namespace, f"adm{uuid.uuid4().hex[:6]}"
    client_id = f"{name}-clinic"

    def paitient(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "paitient_cli.main", "--kubeconfig", str(monitored.cli_kubeconfig),
             "--system-namespace", ns, *args],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )  # fmt: skip
        assert done.returncode == 0, f"paitient {' '.join(args)}: {done.stderr}"
        return done.stdout

    try:
        paitient("tenants", "create", name, "--client-id", client_id, "--tier", "standard")
        wait_for(lambda: tenant_ready(kube, name), timeout=60, what="tenant Ready")
        wait_for(lambda: kube.get("v1", "Secret", f"paitient-api-keys-{name}", namespace=ns),
                 what="the tenant's key Secret")  # fmt: skip
        created = paitient("keys", "create", "--client-id", client_id, "--expires", "30d")
        key_id = created.splitlines()[2].split()[2]
        assert key_id in paitient("keys", "list", "--client-id", client_id)
        assert "revoked" in paitient("keys", "revoke", key_id)
        assert "suspended" in paitient("tenants", "suspend", name)
        assert "resumed" in paitient("tenants", "resume", name)
        assert name in paitient("tenants", "list")
        assert "deleted" in paitient("tenants", "delete", name, "--force")
    finally:
        if kube.get("paitient.ai/v1alpha1", "Tenant", name) is not None:
            admin.delete_tenant(kube, name, force=True)
    # Nothing beyond: no Secret elsewhere, no workload, no RBAC.
    for args in (("get", "secrets", "-n", "kube-system"), ("create", "deployments", "-n", ns),
                 ("delete", "secrets", "-n", ns), ("create", "clusterrolebindings")):  # fmt: skip
        answer = subprocess.run(
            [str(REPO / ".local" / "bin" / "kubectl"), "--kubeconfig", str(monitored.cli_kubeconfig),
             "auth", "can-i", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert answer.stdout.strip() == "no", args
