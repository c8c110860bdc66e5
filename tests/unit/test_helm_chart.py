"""The Helm chart (charts/paitient): lint, render with several values, validate every object
against the Kubernetes schemas, and check what the components will actually read (the operator's
config file, the front door's arguments, the RBAC) and the Argo CD health check."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from lupa import lua51

from paitient_api.settings import FrontDoorSettings
from paitient_common.settings import load, load_or_exit
from paitient_common.tiers import Tier
from paitient_localcluster.upstream.certmanager import fetch_crds
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.builders.gateway_rbac import build_gateway_roles
from paitient_operator.certificates import x509
from paitient_operator.config import (
    CertManagerConfig,
    GatewayConfig,
    OperatorCommand,
    OperatorConfig,
    TLSConfig,
    load_config,
)
from tests.unit.operator.factories import make_md

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "paitient"
HELM = REPO / ".local" / "bin" / "helm"
KUBERNETES_VERSION = "1.34.0"  # the local control plane's
NAMESPACE = "paitient-system"
RELEASE = "paitient"

Obj = dict[str, Any]

CUSTOM_TIERS = {
    "clinic": {
        "tokenLimit": 2_000_000_000,
        "period": "daily",
        "requestsPerMinute": 120,
        "tokensPerMinute": 40_000,
        "maxDeployments": 3,
        "maxGpus": 4,
        "gpusAllowed": True,
    },
    "trial": {
        "tokenLimit": 1000,
        "requestsPerMinute": 1,
        "tokensPerMinute": 100,
        "maxDeployments": 1,
        "maxGpus": 0,
        "gpusAllowed": False,
    },
}
CUSTOM_VALUES: Obj = {
    "fullnameOverride": "pt",
    "imagePullSecrets": ["regcred"],
    "commonLabels": {"team": "ml-platform"},
    "operator": {
        "image": {"repository": "registry.local/op", "tag": "1.2.3"},
        "serviceAccount": {"name": "op-sa", "annotations": {"iam": "role"}},
        "metrics": {"enabled": False},
        "verbose": True,
        "extraEnv": [{"name": "PAITIENT_VLLM_PORT", "value": "8001"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "system-cluster-critical",
        "config": {
            "encryptedStorageClasses": ["gp3-encrypted", "premium-cmk"],
            "defaultStorageClass": "gp3-encrypted",
            "tiers": CUSTOM_TIERS,
            "gateway": {"port": 9443, "env": {"LOG_LEVEL": "debug"}},
            "dnsNamespace": "",
            "gpuRuntimeClassName": "nvidia",
            "monitoringNamespaces": ["monitoring"],
        },
    },
    "frontDoor": {
        "replicas": 2,
        "port": 9000,
        "service": {"type": "LoadBalancer", "port": 443},
        "networkPolicy": {
            "ingressFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
            ],
            "dnsNamespace": "",
            "apiServer": {"cidrs": ["10.0.0.1/32"], "ports": [6443]},
        },
    },
    "gateway": {"image": {"repository": "registry.local/gw", "tag": "7"}},
}
ISSUER_CA = x509.new_authority("the clinic's CA", timedelta(days=1), datetime.now(UTC)).cert_pem
CERT_MANAGER_VALUES: Obj = {
    "operator": {
        "config": {
            "tls": {
                "issuer": "cert-manager",
                "certificateLifetime": "7d",
                "renewBefore": "2d",
                "certManager": {"issuerName": "clinic-ca", "caBundle": ISSUER_CA},
            }
        }
    },
    "frontDoor": {
        "tls": {"certManager": {"issuerName": "public-ca", "dnsNames": ["api.clinic.example"]}}
    },
}
VARIANTS: dict[str, Obj] = {
    "defaults": {},
    "front door disabled": {"frontDoor": {"enabled": False}},
    "custom": CUSTOM_VALUES,
    "cert-manager": CERT_MANAGER_VALUES,
    "front door tls secret": {"frontDoor": {"tls": {"existingSecret": "api-cert"}}},
}


def helm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing: run `make setup`")
    return subprocess.run(
        [str(HELM), *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def render(values: Obj) -> list[Obj]:
    """``helm template`` with ``values`` (CRDs included); a fresh copy of every object."""
    return copy.deepcopy(_render(json.dumps(values, sort_keys=True)))


@functools.cache
def _render(values: str) -> list[Obj]:
    result = helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds",
        "--kube-version", KUBERNETES_VERSION, "--values", "-", stdin=values,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    (found,) = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def operator_config(objects: list[Obj], tmp_path: Path, name: str) -> OperatorConfig:
    """The rendered ConfigMap's file, read by the operator's own loader as the pod would."""
    configmap = one(objects, "ConfigMap", name)
    path = tmp_path / "operator.yaml"
    path.write_text(configmap["data"]["operator.yaml"])
    return load_config({"PAITIENT_OPERATOR_CONFIG": str(path)})


# -- the chart as a whole ------------------------------------------------------------------------


def test_lint_strict() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_is_valid_kubernetes(variant: str, tmp_path: Path) -> None:
    objects = render(VARIANTS[variant])
    assert objects
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == "cert-manager.io/v1":
            _validate_with_cert_managers_crd(obj, where)
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{variant}: {where} is invalid at {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{variant}: {where}: {exc.message}")


@functools.cache
def _cert_manager_schema(kind: str) -> Obj:
    """The openAPIV3Schema of cert-manager's own CRD for ``kind`` (fetched and pinned)."""
    plural = {"Certificate": "certificates"}[kind]
    crd = yaml.safe_load((fetch_crds() / f"cert-manager.io_{plural}.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: Obj = version["schema"]["openAPIV3Schema"]
    return schema


def _validate_with_cert_managers_crd(obj: Obj, where: str) -> None:
    try:
        jsonschema.validate(obj, _cert_manager_schema(obj["kind"]))
    except jsonschema.ValidationError as exc:
        pytest.fail(f"{where} breaks cert-manager's schema at {list(exc.path)}: {exc.message}")


def test_default_install_holds_crds_operator_and_front_door(tmp_path: Path) -> None:
    objects = render({})
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted(
        [
            ("CustomResourceDefinition", "modeldeployments.paitient.ai"),
            ("CustomResourceDefinition", "tenants.paitient.ai"),
            ("CustomResourceDefinition", "usagereports.paitient.ai"),
            *[
                (kind, "paitient-operator")
                for kind in ("ServiceAccount", "ConfigMap", "Deployment", "ClusterRole",
                             "ClusterRoleBinding", "Role", "RoleBinding")
            ],
            *[
                (kind, "paitient-api")
                for kind in ("ServiceAccount", "Deployment", "Service", "NetworkPolicy",
                             "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
            ],
        ]
    )  # fmt: skip
    for obj in objects:
        if obj["kind"] != "CustomResourceDefinition" and not obj["kind"].startswith("Cluster"):
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]
    assert not by_kind(objects, "Namespace"), "the release namespace is Helm's (--create-namespace)"


def test_front_door_disabled_leaves_only_the_operator(tmp_path: Path) -> None:
    objects = render({"frontDoor": {"enabled": False}})
    names = {o["metadata"]["name"] for o in objects if o["kind"] != "CustomResourceDefinition"}
    assert names == {"paitient-operator"}


def test_crds_in_the_chart_are_the_generated_ones() -> None:
    generated = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    shipped = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert shipped == generated
    for name in generated:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), (
            f"charts/paitient/crds/{name} differs from crds/{name}: python -m paitient_common.resources.crd"
        )


# -- values.schema.json --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "where"),
    [
        ("operator.replicas=abc", "/operator/replicas"),
        ("operator.replicas=2", "/operator/replicas"),  # kopf standalone: one operator
        ("operator.bogus=1", "/operator"),
        ("operator.config.vllmPort=0", "/operator/config/vllmPort"),
        ("operator.config.tiers.gold.tokenLimit=-1", "/operator/config/tiers/gold"),
        ("frontDoor.service.type=Ingress", "/frontDoor/service/type"),
    ],
)
def test_schema_refuses_bad_values(flag: str, where: str) -> None:
    result = helm("template", RELEASE, str(CHART), "--set", flag)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert where in result.stderr, result.stderr


def test_schema_knows_every_operator_setting() -> None:
    """The schema's operator.config is the operator's OperatorConfig (less what the chart sets
    itself), so a new setting cannot be refused by the schema nor a removed one accepted."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    config = schema["properties"]["operator"]["properties"]["config"]

    def aliases(model: type[Any]) -> set[str]:
        return {f.alias or n for n, f in model.model_fields.items()}

    # The chart sets these itself (the store's: PAITIENT_STORE_* from its Secret).
    assert set(config["properties"]) == aliases(OperatorConfig) - {"systemNamespace", "store"}
    assert set(config["properties"]["gateway"]["properties"]) == aliases(GatewayConfig) - {"image"}
    tls = config["properties"]["tls"]["properties"]
    assert set(tls) == aliases(TLSConfig)
    assert set(tls["certManager"]["properties"]) == aliases(CertManagerConfig)
    tier = config["properties"]["tiers"]["additionalProperties"]
    assert set(tier["properties"]) == aliases(Tier)
    assert set(tier["required"]) == {
        f.alias or n for n, f in Tier.model_fields.items() if f.is_required()
    }


# -- what the operator reads ---------------------------------------------------------------------


def test_default_operator_config_is_the_operators_defaults_in_the_release_namespace(
    tmp_path: Path,
) -> None:
    config = operator_config(render({}), tmp_path, "paitient-operator")
    expected = OperatorConfig(
        system_namespace=NAMESPACE,
        front_door_namespace=NAMESPACE,
        gateway=GatewayConfig(
            image="ghcr.io/paitient/paitient-gateway:0.1.0",
        ),
    )
    assert config == expected


def test_gateways_in_model_pods_look_for_keys_in_the_release_namespace(tmp_path: Path) -> None:
    """The operator tells each gateway its system namespace, which the chart sets to the
    release namespace; a user's gateway.env cannot point gateways elsewhere."""
    own = {"operator": {"config": {"gateway": {"env": {"PAITIENT_SYSTEM_NAMESPACE": "keys"}}}}}
    for values in ({}, own):
        config = operator_config(render(values), tmp_path, "paitient-operator")
        deployment = build_deployment(make_md("m").namespace("tenant-a").obj(), config)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        gateway = next(c for c in containers if c["image"] == config.gateway.image)
        env = [(e["name"], e.get("value")) for e in gateway["env"]]
        assert [v for k, v in env if k == "PAITIENT_SYSTEM_NAMESPACE"] == [NAMESPACE]


def test_custom_operator_config_reaches_the_operator(tmp_path: Path) -> None:
    config = operator_config(render(CUSTOM_VALUES), tmp_path, "pt-operator")
    assert config.encrypted_storage_classes == ["gp3-encrypted", "premium-cmk"]
    assert config.default_storage_class == "gp3-encrypted"
    assert config.tiers == {name: Tier.model_validate(t) for name, t in CUSTOM_TIERS.items()}
    assert config.tiers["clinic"].token_limit == 2_000_000_000  # no float rounding on the way
    assert config.gateway.port == 9443
    assert config.gateway.env == {"LOG_LEVEL": "debug"}
    assert config.gateway.image == "registry.local/gw:7"
    assert config.dns_namespace == ""
    assert config.gpu_runtime_class_name == "nvidia"
    assert config.monitoring_namespaces == ["monitoring"]
    assert config.system_namespace == NAMESPACE


def _pod(objects: list[Obj], name: str) -> Obj:
    spec: Obj = one(objects, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def test_operator_pod_mounts_its_config_and_probes_kopfs_liveness(tmp_path: Path) -> None:
    objects = render({})
    deployment = one(objects, "Deployment", "paitient-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = _pod(objects, "paitient-operator")
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert env["PAITIENT_OPERATOR_CONFIG"] == f"{mount['mountPath']}/operator.yaml"
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert volume["configMap"]["name"] == "paitient-operator"
    assert container["command"] == ["paitient-operator"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert "--metrics-address=0.0.0.0:8081" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz" and ports[http["port"]] == 8080
    assert pod["serviceAccountName"] == "paitient-operator"


def test_the_operator_reads_its_pods_arguments_environment_and_file(tmp_path: Path) -> None:
    """The container as the chart renders it, read by the operator's own settings models: flags,
    then environment (extraEnv), then the mounted file."""
    pod = _pod(render(CUSTOM_VALUES), "pt-operator")
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    command = load_or_exit(OperatorCommand, container["args"], prog="paitient-operator", env=env)
    assert command.liveness == "http://0.0.0.0:8080/healthz"
    assert command.metrics_address is None  # metrics disabled in these values
    assert command.verbose is True
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert command.config_file == f"{mount['mountPath']}/operator.yaml"
    configmap = one(render(CUSTOM_VALUES), "ConfigMap", "pt-operator")
    (tmp_path / "operator.yaml").write_text(configmap["data"]["operator.yaml"])
    config = load(OperatorConfig, env=env, file=tmp_path / "operator.yaml")
    assert config.vllm_port == 8001  # extraEnv over the file's default
    assert config.gateway.port == 9443  # the file
    assert config.encrypted_storage_classes == ["gp3-encrypted", "premium-cmk"]


def test_the_front_door_reads_its_pods_arguments() -> None:
    (container,) = _pod(render(VARIANTS["front door tls secret"]), "paitient-api")["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    settings = load_or_exit(FrontDoorSettings, container["args"], prog="paitient-api", env=env)
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.system_namespace == NAMESPACE
    assert settings.gateway_url == "https://{name}.{namespace}.svc:8443"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert settings.tls_cert_file == Path(mount["mountPath"]) / "tls.crt"
    assert settings.tls_key_file == Path(mount["mountPath"]) / "tls.key"


def test_config_change_restarts_the_operator(tmp_path: Path) -> None:
    def checksum(values: Obj) -> str:
        pod = one(render(values), "Deployment", "paitient-operator")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/config"])

    assert checksum({}) != checksum({"operator": {"config": {"encryptedStorageClasses": ["x"]}}})


def test_front_door_serves_the_release_namespace_and_follows_the_gateway_port(
    tmp_path: Path,
) -> None:
    objects = render(CUSTOM_VALUES)
    pod = _pod(objects, "pt-api")
    (container,) = pod["containers"]
    assert container["command"] == ["paitient-api"]
    assert f"--system-namespace={NAMESPACE}" in container["args"]
    assert "--port=9000" in container["args"]
    assert "--gateway-url=https://{name}.{namespace}.svc:9443" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[container["livenessProbe"]["httpGet"]["port"]] == 9000
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = one(objects, "Service", "pt-api")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert (
        service["spec"]["selector"]
        == one(objects, "Deployment", "pt-api")["spec"]["selector"]["matchLabels"]
    )
    assert pod["serviceAccountName"] == "pt-api"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_the_front_door_serves_https_from_an_existing_secret_or_cert_managers(
    tmp_path: Path,
) -> None:
    plain = _pod(render({}), "paitient-api")["containers"][0]
    assert not any(a.startswith("--tls-") for a in plain["args"])
    assert plain["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    for values, secret in (
        (VARIANTS["front door tls secret"], "api-cert"),
        (CERT_MANAGER_VALUES, "paitient-api-tls"),
    ):
        objects = render(values)
        pod = _pod(objects, "paitient-api")
        (container,) = pod["containers"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
        assert f"--tls-cert-file={mount['mountPath']}/tls.crt" in container["args"]
        assert f"--tls-key-file={mount['mountPath']}/tls.key" in container["args"]
        volume = next(v for v in pod["volumes"] if v["name"] == "tls")
        assert volume["secret"]["secretName"] == secret
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["scheme"] == "HTTPS"
            assert container[probe]["httpGet"]["port"] == "https"
        service = one(objects, "Service", "paitient-api")
        assert service["spec"]["ports"][0]["targetPort"] == "https"
    (certificate,) = by_kind(render(CERT_MANAGER_VALUES), "Certificate")
    assert certificate["spec"]["secretName"] == "paitient-api-tls"
    assert certificate["spec"]["issuerRef"]["name"] == "public-ca"
    assert certificate["spec"]["dnsNames"] == [
        "api.clinic.example",
        "paitient-api",
        f"paitient-api.{NAMESPACE}",
        f"paitient-api.{NAMESPACE}.svc",
        f"paitient-api.{NAMESPACE}.svc.cluster.local",
    ]
    both = {"frontDoor": {"tls": {"existingSecret": "a", "certManager": {"issuerName": "b"}}}}
    result = helm("template", RELEASE, str(CHART), "--values", "-", stdin=json.dumps(both))
    assert result.returncode != 0 and "not both" in result.stderr


def test_cert_manager_for_gateways_needs_an_issuer_and_its_ca_bundle(tmp_path: Path) -> None:
    config = operator_config(render(CERT_MANAGER_VALUES), tmp_path, "paitient-operator")
    assert config.tls.issuer == "cert-manager"
    assert config.tls.certificate_lifetime == timedelta(days=7)
    assert config.tls.cert_manager.issuer_name == "clinic-ca"
    assert config.tls.cert_manager.ca_bundle == ISSUER_CA
    missing = {"operator": {"config": {"tls": {"issuer": "cert-manager"}}}}
    result = helm("template", RELEASE, str(CHART), "--values", "-", stdin=json.dumps(missing))
    assert result.returncode != 0 and "issuerName is required" in result.stderr


@pytest.mark.parametrize("variant", ["defaults", "custom"])
def test_pods_are_locked_down(variant: str, tmp_path: Path) -> None:
    objects = render(VARIANTS[variant])
    for deployment in by_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        # Service links would put PAITIENT_API_PORT=tcp://... into the front door's env.
        assert pod["enableServiceLinks"] is False
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["limits"]["memory"]


def test_front_door_network_policy(tmp_path: Path) -> None:
    default = one(render({}), "NetworkPolicy", "paitient-api")["spec"]
    assert default["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert default["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    dns, api, gateways = default["egress"]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert "to" not in api and {p["port"] for p in api["ports"]} == {443, 6443}
    assert gateways["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert gateways["to"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "paitient-model"  # builders.metadata.APP_NAME
    }

    custom = one(render(CUSTOM_VALUES), "NetworkPolicy", "pt-api")["spec"]
    assert (
        custom["ingress"][0]["from"] == CUSTOM_VALUES["frontDoor"]["networkPolicy"]["ingressFrom"]
    )
    assert custom["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9000}]
    dns, api, gateways = custom["egress"]
    assert "to" not in dns
    assert api == {"ports": [{"protocol": "TCP", "port": 6443}], "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}  # fmt: skip
    assert gateways["ports"] == [{"protocol": "TCP", "port": 9443}]

    off = render({"frontDoor": {"networkPolicy": {"enabled": False}}})
    assert not by_kind(off, "NetworkPolicy")


# -- RBAC ------------------------------------------------------------------------------------------


def _rules(objects: list[Obj], kind: str, name: str) -> list[Obj]:
    rules: list[Obj] = one(objects, kind, name)["rules"]
    return rules


def _grants(rules: list[Obj]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_has_no_wildcards_and_binds_the_right_accounts(tmp_path: Path) -> None:
    objects = render(CUSTOM_VALUES)
    for obj in by_kind(objects, "ClusterRole") + by_kind(objects, "Role"):
        for rule in obj["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], obj
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
    for binding in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding"):
        (subject,) = binding["subjects"]
        assert subject["namespace"] == NAMESPACE
        expected = "op-sa" if binding["metadata"]["name"] == "pt-operator" else "pt-api"
        assert subject["name"] == expected
        assert binding["roleRef"]["name"] == binding["metadata"]["name"]


def test_secrets_are_granted_in_the_release_namespace_and_the_serving_ones_by_name(
    tmp_path: Path,
) -> None:
    """The front door has no Secret outside the release namespace; the operator may get,
    create and patch Secrets elsewhere (each model's serving certificate, read by name), never
    list or watch them, and not at all when cert-manager issues the certificates."""
    objects = render({})
    front = _grants(_rules(objects, "ClusterRole", "paitient-api"))
    assert not {g for g in front if g[1] in ("secrets", "configmaps")}
    operator = _grants(_rules(objects, "ClusterRole", "paitient-operator"))
    assert {g for g in operator if g[1] in ("secrets", "configmaps")} == {
        ("", "secrets", "get"), ("", "secrets", "create"), ("", "secrets", "patch"),
    }  # fmt: skip
    assert not {g for g in operator if g[0] == "cert-manager.io"}
    managed = _grants(_rules(render(CERT_MANAGER_VALUES), "ClusterRole", "paitient-operator"))
    assert not {g for g in managed if g[1] == "secrets"}
    assert {g for g in managed if g[0] == "cert-manager.io"} == {
        ("cert-manager.io", "certificates", verb)
        for verb in ("get", "list", "watch", "create", "patch")
    }
    for name in ("paitient-operator", "paitient-api"):
        role = one(objects, "Role", name)
        assert role["metadata"]["namespace"] == NAMESPACE
    assert {g for g in _grants(_rules(objects, "Role", "paitient-operator")) if g[1] == "secrets"} == {
        ("", "secrets", "get"), ("", "secrets", "list"), ("", "secrets", "watch"),
        ("", "secrets", "create"), ("", "secrets", "patch"),
    }  # fmt: skip
    front = _grants(_rules(objects, "Role", "paitient-api"))
    assert {g for g in front if g[1] == "secrets"} == {
        ("", "secrets", "get"),
        ("", "secrets", "list"),
        ("", "secrets", "watch"),
    }


def test_operator_never_deletes_and_front_door_only_touches_model_deployments(
    tmp_path: Path,
) -> None:
    objects = render({})
    operator = _grants(_rules(objects, "ClusterRole", "paitient-operator"))
    # Children go with their owner (garbage collection): the operator deletes only the gateway
    # bindings outside a deployment's namespace, which no owner can collect.
    assert {g for g in operator if g[2] in ("delete", "update") and "/" not in g[1]} == {
        ("rbac.authorization.k8s.io", "rolebindings", "delete"),
        ("rbac.authorization.k8s.io", "clusterrolebindings", "delete"),
    }
    assert ("paitient.ai", "modeldeployments/status", "patch") in operator
    assert ("", "events", "create") in operator
    front = _grants(_rules(objects, "ClusterRole", "paitient-api"))
    writes = {g for g in front if g[2] not in ("get", "list", "watch")}
    assert writes == {
        ("paitient.ai", "modeldeployments", "create"),
        ("paitient.ai", "modeldeployments", "patch"),
        ("paitient.ai", "modeldeployments", "delete"),
    }


# -- Argo CD health check --------------------------------------------------------------------------

HEALTH_LUA = (CHART / "argocd" / "modeldeployment-health.lua").read_text()


def argocd_health(obj: Obj) -> tuple[str, str]:
    """Run the health check as Argo CD does (Lua 5.1, the object as the global ``obj``)."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA)
    return str(result["status"]), str(result["message"])


def _md(generation: int, status: Obj | None) -> Obj:
    md: Obj = {"metadata": {"name": "m", "generation": generation}}
    if status is not None:
        md["status"] = status
    return md


def _status(phase: str, reason: str, message: str, observed: int = 3) -> Obj:
    ready = {"type": "Ready", "status": str(phase == "Ready"), "reason": reason, "message": message}
    return {
        "phase": phase,
        "observedGeneration": observed,
        "message": message,
        "conditions": [{"type": "SpecValid", "status": "True", "reason": "Valid"}, ready],
    }


@pytest.mark.parametrize(
    ("status", "health"),
    [
        (None, "Progressing"),
        (_status("Ready", "Ready", "1/1 replicas ready."), "Healthy"),
        (_status("Ready", "Ready", "1/1 replicas ready.", observed=2), "Progressing"),
        (
            {k: v for k, v in _status("Ready", "Ready", "ok").items() if k != "observedGeneration"},
            "Progressing",
        ),
        (_status("Progressing", "Progressing", "0/1 replicas ready, 1 up to date."), "Progressing"),
        (
            _status(
                "Pending", "GPUCapacity", "0/1 nodes are available: Insufficient nvidia.com/gpu"
            ),
            "Progressing",
        ),
        (_status("Degraded", "Degraded", "1/2 replicas ready."), "Degraded"),
        (
            _status(
                "Failed",
                "StorageNotEncrypted",
                "storageClassName 'plain' is not known to be encrypted",
            ),
            "Degraded",
        ),
        (_status("Progressing", "ScaledToZero", "Scaled to zero replicas."), "Suspended"),
    ],
)
def test_argocd_health_check(status: Obj | None, health: str) -> None:
    got, message = argocd_health(_md(3, status))
    assert got == health
    if status is not None and status.get("observedGeneration") == 3:
        assert message == status["message"]


def test_argocd_health_check_falls_back_to_the_ready_condition_message() -> None:
    status = _status("Failed", "InvalidSpec", "extraArgs may not contain --host")
    del status["message"]
    assert argocd_health(_md(3, status)) == ("Degraded", "extraArgs may not contain --host")


def test_argocd_cm_patch_holds_the_same_lua() -> None:
    patch = yaml.safe_load((CHART / "argocd" / "argocd-cm-patch.yaml").read_text())
    kubernetes_validate.validate(patch, KUBERNETES_VERSION, strict=True)
    assert patch["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
    assert patch["data"] == {
        "resource.customizations.health.paitient.ai_ModelDeployment": HEALTH_LUA
    }


# -- docs ------------------------------------------------------------------------------------------

# Maps whose entries are the user's own (not chart settings) are documented as one key.
OPAQUE = {"resources", "tiers", "podSecurityContext", "securityContext"}


def _value_keys(values: Obj, prefix: str = "") -> list[str]:
    """Dotted paths of every setting in values.yaml (maps of settings are descended into)."""
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in OPAQUE:
            keys += _value_keys(value, f"{path}.")
        else:
            keys.append(path)
    return keys


def test_docs_describe_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    docs = (REPO / "docs" / "helm.md").read_text()
    missing = [key for key in _value_keys(values) if f"`{key}`" not in docs]
    assert not missing, f"docs/helm.md does not describe: {missing}"


def _holds(rules: list[Obj], group: str, resource: str, verb: str, name: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
        and (not r.get("resourceNames") or name in r["resourceNames"])
        for r in rules
    )  # fmt: skip


def test_operator_holds_every_right_it_gives_gateways() -> None:
    """RBAC lets the operator create and bind the gateway roles without "escalate" or "bind"
    only because it holds every right in them: at cluster scope for the ClusterRoles, in the
    release namespace for the Role."""
    objects = render({})
    cluster = _rules(objects, "ClusterRole", "paitient-operator")
    namespaced = cluster + _rules(objects, "Role", "paitient-operator")
    missing = [
        (role["metadata"]["name"], group, resource, verb, name)
        for role in build_gateway_roles(NAMESPACE)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
        if not _holds(
            namespaced if role["kind"] == "Role" else cluster, group, resource, verb, name
        )
    ]
    assert missing == []
    # ... and may write those roles, by name, but no other.
    assert _holds(cluster, "rbac.authorization.k8s.io", "clusterroles", "patch", "paitient-gateway")
    assert not _holds(cluster, "rbac.authorization.k8s.io", "clusterroles", "patch", "admin")
