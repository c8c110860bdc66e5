"""The chart's store and replicas (issue 20): the store's StatefulSet, its settings in every
component, its NetworkPolicy and certificate; front door and operator replicas that survive
losing a pod. Rendered with ``helm template`` (test_helm_chart.py validates every object
against the Kubernetes schemas)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_helm_chart import (
    CERT_MANAGER_VALUES,
    CHART,
    EXTERNAL_STORE_VALUES,
    NAMESPACE,
    RELEASE,
    Obj,
    by_kind,
    helm,
    one,
    operator_config,
    render,
)

STORE = "paitient-store"
STORE_LABELS = {
    "app.kubernetes.io/name": "paitient",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "store",
}


def _pod(objects: list[Obj], kind: str, name: str) -> Obj:
    spec: Obj = one(objects, kind, name)["spec"]["template"]["spec"]
    return spec


def _env(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _fails(values: Obj) -> str:
    result = helm("template", RELEASE, str(CHART), "--values", "-", stdin=json.dumps(values))
    assert result.returncode != 0
    return result.stderr


# -- the store -------------------------------------------------------------------------------------


def test_the_store_is_one_redis_pod_with_its_data_on_a_volume() -> None:
    objects = render({"store": {"persistence": {"size": "5Gi", "storageClassName": "fast"}}})
    stateful_set = one(objects, "StatefulSet", STORE)
    assert stateful_set["spec"]["replicas"] == 1
    pod = stateful_set["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/paitient/redis:7.0.15"
    assert container["args"] == ["/etc/paitient-store/config/redis.conf"]
    assert pod["automountServiceAccountToken"] is False  # it never calls the API
    # The probes' redis-cli authenticates with the password from the Secret, over TLS.
    assert _env(container)["REDISCLI_AUTH"] == {
        "secretKeyRef": {"name": f"{STORE}-auth", "key": "password"}
    }
    ready = container["readinessProbe"]["exec"]["command"]
    assert ready[0] == "redis-cli" and ready[-1] == "ping"
    assert "--tls" in ready and "/etc/paitient-store/tls/ca.crt" in ready
    assert container["livenessProbe"]["tcpSocket"]["port"] == "store"
    volumes = {v["name"]: v for v in pod["volumes"]}
    # The server gets the ACL file (a hash of the password), never the password itself.
    assert volumes["auth"]["secret"]["items"] == [{"key": "users.acl", "path": "users.acl"}]
    assert volumes["tls"]["secret"]["secretName"] == f"{STORE}-tls"
    (claim,) = stateful_set["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    service = one(objects, "Service", STORE)
    assert service["spec"]["selector"] == STORE_LABELS
    assert service["spec"]["ports"] == [
        {"name": "rediss", "port": 6379, "targetPort": "store", "protocol": "TCP"}
    ]


def _redis_conf(values: Obj) -> list[str]:
    conf = one(render(values), "ConfigMap", STORE)["data"]["redis.conf"]
    return [line.strip() for line in conf.splitlines() if line.strip() and not line.startswith("#")]


def test_the_store_serves_tls_only_and_keeps_every_counter() -> None:
    conf = _redis_conf({})
    assert "port 0" in conf and "tls-port 6379" in conf  # no plain-text port at all
    assert "tls-cert-file /etc/paitient-store/tls/tls.crt" in conf
    assert "aclfile /etc/paitient-store/auth/users.acl" in conf
    assert "maxmemory-policy noeviction" in conf and "appendonly yes" in conf
    plain = _redis_conf({"store": {"tls": {"enabled": False}}})
    assert "port 6379" in plain and not [line for line in plain if line.startswith("tls-")]


def _store_settings(objects: list[Obj], component: str) -> tuple[dict[str, Any], Obj | None]:
    name = {"api": "paitient-api", "operator": "paitient-operator"}[component]
    pod = _pod(objects, "Deployment", name)
    (container,) = pod["containers"]
    env = {k: v for k, v in _env(container).items() if k.startswith("PAITIENT_STORE_")}
    volume = next((v for v in pod["volumes"] if v["name"] == "store-ca"), None)
    if volume is not None:
        mount = next(m for m in container["volumeMounts"] if m["name"] == "store-ca")
        assert env["PAITIENT_STORE_CA_FILE"] == f"{mount['mountPath']}/ca.crt"
    return env, volume


def test_front_door_and_operator_get_the_chart_run_stores_settings() -> None:
    objects = render({})
    for component, optional in (("api", False), ("operator", True)):
        env, ca = _store_settings(objects, component)
        assert env["PAITIENT_STORE_URL"] == f"rediss://{STORE}.{NAMESPACE}.svc:6379/0"
        secret = env["PAITIENT_STORE_PASSWORD"]["secretKeyRef"]
        assert (secret["name"], secret["key"]) == (f"{STORE}-auth", "password")
        # The operator makes the password and the certificate: it must start without them.
        assert secret.get("optional", False) is optional
        assert ca is not None
        assert ca["secret"]["secretName"] == f"{STORE}-tls"
        assert ca["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]  # not the key
    env, ca = _store_settings(render({"store": {"tls": {"enabled": False}}}), "api")
    assert env["PAITIENT_STORE_URL"] == f"redis://{STORE}.{NAMESPACE}.svc:6379/0"
    assert "PAITIENT_STORE_CA_FILE" not in env and ca is None


def test_an_existing_store_is_used_by_url_with_its_own_secret_and_ca(tmp_path: Path) -> None:
    objects = render(EXTERNAL_STORE_VALUES)
    assert not by_kind(objects, "StatefulSet")
    env, ca = _store_settings(objects, "api")
    assert env["PAITIENT_STORE_URL"] == "rediss://redis.clinic.example:6380/2"
    assert env["PAITIENT_STORE_PASSWORD"] == {
        "secretKeyRef": {"name": "clinic-redis", "key": "secret"}
    }
    assert ca == {"name": "store-ca", "configMap": {"name": f"{STORE}-ca"}}
    assert one(objects, "ConfigMap", f"{STORE}-ca")["data"]["ca.crt"].strip() == (
        EXTERNAL_STORE_VALUES["store"]["external"]["caBundle"].strip()
    )
    egress = one(objects, "NetworkPolicy", "paitient-api")["spec"]["egress"][-1]
    assert egress == {"ports": [{"protocol": "TCP", "port": 6380}],
                      "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}  # fmt: skip
    config = operator_config(objects, tmp_path, "paitient-operator")
    assert config.managed_store.service == ""  # nothing for the operator to make


def test_without_a_store_no_component_is_told_of_one() -> None:
    objects = render({"store": {"enabled": False}})
    for component in ("api", "operator"):
        assert _store_settings(objects, component) == ({}, None)


def test_the_store_and_an_existing_one_are_exclusive() -> None:
    stderr = _fails({"store": {"external": {"url": "redis://other:6379/0"}}})
    assert "not both" in stderr


def test_only_the_products_pods_reach_the_store() -> None:
    policy = one(render({}), "NetworkPolicy", STORE)["spec"]
    assert policy["podSelector"]["matchLabels"] == STORE_LABELS
    assert policy["egress"] == []  # the store calls no one
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 6379}]
    front, operator, models = ingress["from"]
    assert front["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert operator["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert "namespaceSelector" not in front and "namespaceSelector" not in operator
    # gateways: model pods (the operator's label) in tenant namespaces (the operator's label)
    assert models == {
        "namespaceSelector": {
            "matchExpressions": [{"key": "paitient.ai/tenant", "operator": "Exists"}]
        },
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "paitient-model"}},
    }


def test_the_stores_certificate_comes_from_the_operator_cert_manager_or_a_secret(
    tmp_path: Path,
) -> None:
    config = operator_config(render({}), tmp_path, "paitient-operator").managed_store
    assert (config.tls_secret, config.issue_certificate) == (f"{STORE}-tls", True)
    objects = render(CERT_MANAGER_VALUES)
    certificate = one(objects, "Certificate", f"{STORE}-tls")
    assert certificate["spec"]["issuerRef"] == {
        "name": "clinic-ca",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert f"{STORE}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    managed = operator_config(objects, tmp_path, "paitient-operator").managed_store
    assert (managed.tls_secret, managed.issue_certificate) == (f"{STORE}-tls", False)
    objects = render({"store": {"tls": {"existingSecret": "store-cert"}}})
    assert not [
        c for c in by_kind(objects, "Certificate") if c["metadata"]["name"].endswith("store-tls")
    ]
    assert _pod(objects, "StatefulSet", STORE)["volumes"][2]["secret"]["secretName"] == "store-cert"
    # With cert-manager for the gateways the operator has no CA: the store needs another source.
    stderr = _fails(
        {"operator": {"config": {"tls": CERT_MANAGER_VALUES["operator"]["config"]["tls"]}}}
    )
    assert "store.tls needs a certificate" in stderr


# -- replicas that survive losing a pod --------------------------------------------------------------


def test_the_front_door_runs_two_replicas_spread_and_drains_on_sigterm() -> None:
    objects = render({})
    deployment = one(objects, "Deployment", "paitient-api")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = deployment["spec"]["template"]["spec"]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # one node still runs both
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    (container,) = pod["containers"]
    assert (
        "--shutdown-delay=5" in container["args"] and "--shutdown-timeout=300" in container["args"]
    )
    assert pod["terminationGracePeriodSeconds"] == 5 + 300 + 10
    budget = one(objects, "PodDisruptionBudget", "paitient-api")["spec"]
    assert budget == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}
    custom = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
               "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"a": "b"}}}]  # fmt: skip
    values = {"frontDoor": {"topologySpreadConstraints": custom, "replicas": 1,
                            "shutdown": {"delaySeconds": 2, "timeoutSeconds": 60}}}  # fmt: skip
    objects = render(values)
    pod = _pod(objects, "Deployment", "paitient-api")
    assert pod["topologySpreadConstraints"] == custom
    assert pod["terminationGracePeriodSeconds"] == 72
    assert not [
        b for b in by_kind(objects, "PodDisruptionBudget") if "api" in b["metadata"]["name"]
    ]


def _rules(objects: list[Obj], name: str) -> list[Obj]:
    rules: list[Obj] = one(objects, "Role", name)["rules"]
    return rules


@pytest.mark.parametrize("lease", ["paitient-operator", "ops-leader"])
def test_operator_replicas_elect_a_leader_on_a_lease_they_alone_may_renew(
    lease: str, tmp_path: Path
) -> None:
    values = {"operator": {"config": {"leaderElection": {"leaseName": lease}}}}
    objects = render(values if lease != "paitient-operator" else {})
    deployment = one(objects, "Deployment", "paitient-operator")
    assert deployment["spec"]["replicas"] == 2
    assert one(objects, "PodDisruptionBudget", "paitient-operator")["spec"]["maxUnavailable"] == 1
    leases = [r for r in _rules(objects, "paitient-operator") if r["resources"] == ["leases"]]
    assert leases == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": [lease], "verbs": ["get", "update"]},
    ]  # fmt: skip
    # ... and restart the store, by name, when its certificate changes
    (store,) = [
        r for r in _rules(objects, "paitient-operator") if r["resources"] == ["statefulsets"]
    ]
    assert (store["resourceNames"], store["verbs"]) == ([STORE], ["get", "patch"])
    config = operator_config(objects, tmp_path, "paitient-operator")
    assert config.leader_election.lease_name == lease
    single = render({"operator": {"replicas": 1}})
    assert not [
        b for b in by_kind(single, "PodDisruptionBudget") if "operator" in b["metadata"]["name"]
    ]
