"""The model pod: loopback vLLM behind the only listener, locked down, probed via the gateway."""

from __future__ import annotations

from typing import Any

import pytest

from paitient_operator.builders.deployment import build_deployment
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import ForbiddenRuntimeArgument
from tests.unit.operator.factories import make_md


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in pod(deployment)["containers"] if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def mounts_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in c.get("volumeMounts", [])}


def volumes_of(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod(d)["volumes"]}


def test_identity_labels_and_no_owner_references(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    assert d["apiVersion"] == "apps/v1" and d["kind"] == "Deployment"
    assert d["metadata"]["name"] == "a" and d["metadata"]["namespace"] == "tenant-demo"
    assert "ownerReferences" not in d["metadata"]
    labels = d["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "a"
    assert labels["app.kubernetes.io/managed-by"] == "paitient-operator"
    assert labels["paitient.ai/modeldeployment"] == "a"
    assert "app.kubernetes.io/name" in labels
    selector = d["spec"]["selector"]["matchLabels"]
    assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    assert pod(d)["serviceAccountName"] == "paitient-gateway"  # the namespace's gateways share it


def test_only_the_gateway_has_ports(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    with_ports = [c["name"] for c in pod(d)["containers"] if c.get("ports")]
    assert with_ports == ["gateway"]
    assert container(d, "gateway")["ports"] == [
        {"name": "gateway", "containerPort": 8443, "protocol": "TCP"}
    ]
    args = container(d, "vllm")["args"]
    assert args[args.index("--host") + 1] == "127.0.0.1"


def test_security_contexts_everywhere(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    pod_ctx = pod(d)["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True
    assert pod_ctx["runAsUser"] != 0
    assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert len(pod(d)["containers"]) == 2
    for c in pod(d)["containers"] + pod(d).get("initContainers", []):
        ctx = c["securityContext"]
        assert ctx["runAsNonRoot"] is True, c["name"]
        assert ctx["readOnlyRootFilesystem"] is True, c["name"]
        assert ctx["allowPrivilegeEscalation"] is False, c["name"]
        assert ctx["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]


def test_tmp_is_memory_backed_for_each_container(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    volumes = volumes_of(d)
    for c in pod(d)["containers"]:
        (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert volumes[tmp["name"]]["emptyDir"]["medium"] == "Memory"
    shm = mounts_of(container(d, "vllm"))["dshm"]
    assert shm["mountPath"] == "/dev/shm"
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"


def test_service_account_token_only_in_the_gateway(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    assert pod(d)["automountServiceAccountToken"] is False
    token_volumes = {
        v["name"] for v in pod(d)["volumes"]
        if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))
    }  # fmt: skip
    assert len(token_volumes) == 1
    (token_volume,) = token_volumes
    gateway_mounts = mounts_of(container(d, "gateway"))
    assert (
        gateway_mounts[token_volume]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    )
    assert gateway_mounts[token_volume]["readOnly"] is True
    assert token_volume not in mounts_of(container(d, "vllm"))


def test_all_probes_go_through_the_gateway_port(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    for c in pod(d)["containers"]:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c[kind]
            assert probe["httpGet"]["port"] == 8443, (c["name"], kind)
            assert probe["httpGet"]["path"].startswith("/healthz/"), (c["name"], kind)
            assert probe["httpGet"]["scheme"] == "HTTPS", (c["name"], kind)  # the port is TLS only
    gateway = container(d, "gateway")
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    vllm = container(d, "vllm")
    startup_budget = (
        vllm["startupProbe"]["periodSeconds"] * vllm["startupProbe"]["failureThreshold"]
    )
    assert startup_budget >= config.vllm_startup_timeout_seconds  # downloads take long


def test_the_serving_certificate_is_mounted_into_the_gateway_alone(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    volume = volumes_of(d)["serving-tls"]
    assert volume["secret"] == {"secretName": "a-tls", "defaultMode": 0o440}
    mount = mounts_of(container(d, "gateway"))["serving-tls"]
    assert mount["readOnly"] is True
    assert "serving-tls" not in mounts_of(container(d, "vllm"))
    env = env_of(container(d, "gateway"))
    assert env["PAITIENT_TLS_CERT_FILE"] == f"{mount['mountPath']}/tls.crt"
    assert env["PAITIENT_TLS_KEY_FILE"] == f"{mount['mountPath']}/tls.key"
    # Renewal changes the Secret's data, not the pod: the template names no certificate detail.
    other = build_deployment(make_md("a").obj(), config)
    assert other["spec"]["template"] == d["spec"]["template"]


def test_gpu_resources_selector_and_toleration(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").gpus(2).product("NVIDIA-H100-80GB-HBM3").obj(), config)
    resources = container(d, "vllm")["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "2"
    assert resources["requests"]["nvidia.com/gpu"] == "2"
    assert pod(d)["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod(d)[
        "tolerations"
    ]
    assert container(d, "vllm")["image"] == config.vllm_image
    assert "nvidia.com/gpu" not in container(d, "gateway")["resources"].get("limits", {})


def test_gpu_without_product_has_no_node_selector(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    assert "nodeSelector" not in pod(d)
    assert container(d, "vllm")["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_cpu_deployment_uses_the_cpu_image_and_no_gpu(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").gpus(2).product("X").cpu_only().obj(), config)
    vllm = container(d, "vllm")
    assert vllm["image"] == config.vllm_cpu_image
    assert all("gpu" not in key for section in vllm["resources"].values() for key in section)
    assert "nodeSelector" not in pod(d)
    assert "tolerations" not in pod(d)


def test_runtime_image_overrides_config(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").image("my/vllm:1").obj(), config)
    assert container(d, "vllm")["image"] == "my/vllm:1"


def test_requests_and_memory_limit_from_spec(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").resources(cpu="8", memory="64Gi").obj(), config)
    resources = container(d, "vllm")["resources"]
    assert resources["requests"]["cpu"] == "8"
    assert resources["requests"]["memory"] == "64Gi"
    assert resources["limits"]["memory"] == "64Gi"


def test_replicas_follow_spec_unless_left_to_an_autoscaler(config: OperatorConfig) -> None:
    md = make_md("a").replicas(3).obj()
    assert build_deployment(md, config)["spec"]["replicas"] == 3
    assert "replicas" not in build_deployment(md, config, replicas=None)["spec"]
    assert build_deployment(md, config, replicas=2)["spec"]["replicas"] == 2
    assert build_deployment(make_md("z").replicas(0).obj(), config)["spec"]["replicas"] == 0
    assert build_deployment(make_md("u").obj(), config)["spec"]["replicas"] == 1  # unset: 1


def test_gateway_env_tells_upstream_identity_and_limits(config: OperatorConfig) -> None:
    md = make_md("a").rate_limits(rpm=600, tpm=200000).obj()
    env = env_of(container(build_deployment(md, config), "gateway"))
    assert env["PAITIENT_UPSTREAM_URL"] == "http://127.0.0.1:8000"
    assert env["PAITIENT_MODELDEPLOYMENT_NAMESPACE"] == "tenant-demo"
    assert env["PAITIENT_MODELDEPLOYMENT_NAME"] == "a"
    assert env["PAITIENT_RATE_LIMIT_REQUESTS_PER_MINUTE"] == "600"
    assert env["PAITIENT_RATE_LIMIT_TOKENS_PER_MINUTE"] == "200000"
    assert env["PAITIENT_GATEWAY_PORT"] == "8443"
    assert env["PAITIENT_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["PAITIENT_MAX_CHOICES"] == "16"  # the default cap on n / best_of, said in the pod


def test_the_specs_cap_on_choices_reaches_the_gateway(config: OperatorConfig) -> None:
    md = make_md("a").obj()
    md.spec.rate_limits.max_choices = 4
    env = env_of(container(build_deployment(md, config), "gateway"))
    assert env["PAITIENT_MAX_CHOICES"] == "4"


def test_gateway_image_args_and_env_come_from_config() -> None:
    config = OperatorConfig.model_validate({
        "gateway": {"image": "gw:9", "args": ["--log-json"],
                    "env": {"LOG_LEVEL": "info", "PAITIENT_UPSTREAM_URL": "http://evil"}},
    })  # fmt: skip
    gateway = container(build_deployment(make_md("a").obj(), config), "gateway")
    assert gateway["image"] == "gw:9"
    assert gateway["args"] == ["--log-json"]
    env = env_of(gateway)
    assert env["LOG_LEVEL"] == "info"
    assert env["PAITIENT_UPSTREAM_URL"] == "http://127.0.0.1:8000"  # the operator's value wins
    assert [e["name"] for e in gateway["env"]].count("PAITIENT_UPSTREAM_URL") == 1


def test_no_rate_limit_env_when_unlimited(config: OperatorConfig) -> None:
    env = env_of(container(build_deployment(make_md("a").obj(), config), "gateway"))
    assert not any(k.startswith("PAITIENT_RATE_LIMIT") for k in env)


def test_hf_token_from_secret(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").token_secret("hf-token", "token").obj(), config)
    assert env_of(container(d, "vllm"))["HF_TOKEN"] == {
        "secretKeyRef": {"name": "hf-token", "key": "token"}
    }
    assert "HF_TOKEN" not in env_of(container(d, "gateway"))
    plain = build_deployment(make_md("a").obj(), config)
    assert "HF_TOKEN" not in env_of(container(plain, "vllm"))


def test_no_telemetry_and_writable_caches(config: OperatorConfig) -> None:
    env = env_of(container(build_deployment(make_md("a").obj(), config), "vllm"))
    assert env["VLLM_NO_USAGE_STATS"] == "1"
    assert env["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert env["HF_HOME"].startswith(config.model_cache_mount_path)
    assert env["HOME"] == "/tmp"


def test_model_cache_and_pvc_source_volumes(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").uri("pvc://weights/m").obj(), config)
    volumes = volumes_of(d)
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "a"}
    assert volumes["model-source"]["persistentVolumeClaim"] == {
        "claimName": "weights", "readOnly": True,
    }  # fmt: skip
    vllm_mounts = mounts_of(container(d, "vllm"))
    assert vllm_mounts["model-source"]["readOnly"] is True
    assert vllm_mounts["model-cache"]["mountPath"] == config.model_cache_mount_path
    assert env_of(container(d, "vllm"))["HF_HUB_OFFLINE"] == "1"
    remote = build_deployment(make_md("a").obj(), config)
    assert "model-source" not in volumes_of(remote)


def test_refused_extra_args_refuse_the_deployment(config: OperatorConfig) -> None:
    with pytest.raises(ForbiddenRuntimeArgument):
        build_deployment(make_md("a").extra_args("--host", "0.0.0.0").obj(), config)


def test_gpu_rollouts_do_not_surge(config: OperatorConfig) -> None:
    d = build_deployment(make_md("a").obj(), config)
    assert d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_builder_is_deterministic(config: OperatorConfig) -> None:
    md = make_md("a").gpus(2).obj()
    assert build_deployment(md, config) == build_deployment(md, config)
