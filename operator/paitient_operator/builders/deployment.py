"""The model pod's Deployment: vLLM on 127.0.0.1 behind the gateway sidecar, locked down.

Shape of the pod, and why:
- the gateway is the only container with a port; vLLM binds 127.0.0.1, so nothing reaches the
  model without passing the gateway's auth, limits and audit;
- no service-account token in the pod, except a projected one mounted into the gateway only
  (it flushes usage to the API); vLLM never sees a credential but the optional HF token;
- every probe goes through the gateway port, as the kubelet cannot reach 127.0.0.1 in the pod;
  that port speaks only TLS, so probes use HTTPS (the kubelet does not verify certificates);
- the gateway's serving certificate is the Secret ``<name>-tls``, mounted into the gateway
  alone; a renewal changes the Secret's data, never the pod, so nothing restarts;
- read-only root filesystems, so scratch space is memory-backed ``emptyDir`` and caches that
  libraries write under ``$HOME`` are pointed at /tmp or the model cache.
"""

from __future__ import annotations

import math
from typing import Any, Final

from paitient_common.resources.modeldeployment import DEFAULT_MAX_CHOICES, ModelDeployment
from paitient_operator.builders.gateway_identity import GATEWAY_ACCOUNT
from paitient_operator.builders.metadata import (
    Manifest,
    common_labels,
    object_meta,
    selector_labels,
    serving_secret_name,
)
from paitient_operator.builders.security import container_security_context, pod_security_context
from paitient_operator.builders.store import store_env, store_mounts, store_volumes
from paitient_operator.builders.vllm_args import VLLM_HOST, build_vllm_args
from paitient_operator.builders.vllm_cache import start_cache_env, vllm_image
from paitient_operator.builders.vllm_cpu import cpu_env
from paitient_operator.config import OperatorConfig

VLLM_CONTAINER: Final = "vllm"
GATEWAY_CONTAINER: Final = "gateway"
GATEWAY_PORT_NAME: Final = "gateway"
METRICS_PORT_NAME: Final = "metrics"

# Health endpoints the gateway serves (contract with inference/paitient_gateway):
PROBE_LIVE: Final = "/healthz/live"  # the gateway process answers
PROBE_READY: Final = "/healthz/ready"  # the gateway answers and vLLM is healthy
PROBE_UPSTREAM: Final = "/healthz/upstream"  # vLLM's /health, relayed by the gateway

# Where the official Kubernetes clients look for in-cluster credentials.
SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"

VOLUME_MODEL_CACHE: Final = "model-cache"
VOLUME_MODEL_SOURCE: Final = "model-source"
VOLUME_VLLM_TMP: Final = "vllm-tmp"
VOLUME_GATEWAY_TMP: Final = "gateway-tmp"
VOLUME_SHM: Final = "dshm"
VOLUME_API_TOKEN: Final = "gateway-api-token"  # noqa: S105 - a volume name
VOLUME_SERVING_TLS: Final = "serving-tls"
VOLUME_LIFECYCLE: Final = "lifecycle"

# Shared by both containers: the gateway writes DRAINED_FILE once every request it accepted has
# ended and its usage is flushed; vLLM's preStop hook waits for it (contract with
# paitient_gateway.config's PAITIENT_DRAINED_FILE).
LIFECYCLE_DIR: Final = "/run/paitient"
DRAINED_FILE: Final = f"{LIFECYCLE_DIR}/drained"
# vLLM's preStop: wait until the gateway has drained (the file), or, should the gateway be gone
# without writing it, until its port is closed and vLLM has nothing running or waiting for three
# looks in a row. The kubelet's grace period bounds it. Python: vLLM's images have no shell.
WAIT_FOR_GATEWAY: Final = """
import os, socket, sys, time, urllib.request
drained, port, metrics = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def gateway_up():
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False
def vllm_idle():
    try:
        text = urllib.request.urlopen(metrics, timeout=2).read().decode()
    except OSError:
        return True
    names = ("vllm:num_requests_running", "vllm:num_requests_waiting")
    return all(float(l.rsplit(" ", 1)[1]) == 0 for l in text.splitlines() if l.startswith(names))
quiet = 0
while not os.path.exists(drained) and quiet < 3:
    quiet = quiet + 1 if not gateway_up() and vllm_idle() else 0
    time.sleep(1)
""".strip()

# The serving certificate in the gateway container (contract with paitient_gateway.config).
TLS_DIR: Final = "/etc/paitient/tls"
TLS_CERT_FILE: Final = f"{TLS_DIR}/tls.crt"
TLS_KEY_FILE: Final = f"{TLS_DIR}/tls.key"

# Paths inside the container, each on its own memory-backed emptyDir (not the host's /tmp).
POD_TMP: Final = "/tmp"  # noqa: S108
POD_SHM: Final = "/dev/shm"  # noqa: S108

_PROBE_PERIOD_STARTUP = 10


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _http_probe(path: str, port: int, **timing: int) -> dict[str, Any]:
    # Numeric port: a named port would have to be declared by the probed container itself,
    # and only the gateway declares ports. HTTPS: the gateway port serves nothing else.
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTPS"}, **timing}


def _memory_dir(name: str, size_limit: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": size_limit}}


def vllm_env(md: ModelDeployment, config: OperatorConfig) -> list[dict[str, Any]]:
    """The vLLM container's environment; ``InvalidSpec`` when a CPU spec's memory cannot hold
    vLLM (see ``vllm_cpu``)."""
    cache = config.model_cache_mount_path.rstrip("/")
    env = [
        _env("HOME", POD_TMP),
        _env("XDG_CACHE_HOME", f"{POD_TMP}/.cache"),
        _env("XDG_CONFIG_HOME", f"{POD_TMP}/.config"),
        # Caches worth keeping across restarts live on the model-cache volume.
        _env("HF_HOME", f"{cache}/huggingface"),
        # What a start compiles, kept for the next start of this model (vllm_cache.py).
        *[_env(k, v) for k, v in start_cache_env(md, config).items()],
        # No usage reports or telemetry leave the cluster.
        _env("VLLM_NO_USAGE_STATS", "1"),
        _env("DO_NOT_TRACK", "1"),
        _env("HF_HUB_DISABLE_TELEMETRY", "1"),
    ]
    if not md.spec.use_gpu:
        env += [_env(k, v) for k, v in cpu_env(md).items()]
    if not md.spec.model.is_remote:
        env.append(_env("HF_HUB_OFFLINE", "1"))  # weights are local: never try the Hub
    ref = md.spec.model.token_secret_ref
    if ref is not None:
        env.append(
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        )
    return env


def _vllm_resources(md: ModelDeployment, config: OperatorConfig) -> dict[str, Any]:
    res = md.spec.resources
    requests: dict[str, str] = {"cpu": res.cpu, "memory": res.memory}
    limits: dict[str, str] = {"memory": res.memory}
    if md.spec.use_gpu:
        gpus = str(md.spec.gpu_count)
        requests[config.gpu_resource_name] = gpus
        limits[config.gpu_resource_name] = gpus
    return {"requests": requests, "limits": limits}


def _vllm_container(md: ModelDeployment, config: OperatorConfig) -> dict[str, Any]:
    port = config.gateway.port
    image = vllm_image(md, config)
    mounts: list[dict[str, Any]] = [
        {"name": VOLUME_MODEL_CACHE, "mountPath": config.model_cache_mount_path},
        {"name": VOLUME_VLLM_TMP, "mountPath": POD_TMP},
        {"name": VOLUME_SHM, "mountPath": POD_SHM},
        {"name": VOLUME_LIFECYCLE, "mountPath": LIFECYCLE_DIR, "readOnly": True},
    ]
    if md.spec.model.pvc_claim_and_path() is not None:
        mounts.append(
            {
                "name": VOLUME_MODEL_SOURCE,
                "mountPath": config.model_source_mount_path,
                "readOnly": True,
            }
        )
    startup_failures = math.ceil(config.vllm_startup_timeout_seconds / _PROBE_PERIOD_STARTUP)
    return {
        "name": VLLM_CONTAINER,
        "image": image,
        "imagePullPolicy": config.image_pull_policy,
        "command": list(config.vllm_command),
        "args": build_vllm_args(md, config),
        "env": vllm_env(md, config),
        "resources": _vllm_resources(md, config),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
        # Downloading and loading weights can take long: the startup probe holds the others off.
        "startupProbe": _http_probe(
            PROBE_UPSTREAM,
            port,
            periodSeconds=_PROBE_PERIOD_STARTUP,
            timeoutSeconds=5,
            failureThreshold=startup_failures,
        ),
        # Generous: a restart reloads the whole model.
        "livenessProbe": _http_probe(
            PROBE_UPSTREAM, port, periodSeconds=15, timeoutSeconds=5, failureThreshold=4
        ),
        "readinessProbe": _http_probe(
            PROBE_UPSTREAM, port, periodSeconds=10, timeoutSeconds=5, failureThreshold=3
        ),
        # Scaled down or replaced: vLLM outlives the last request the gateway finishes.
        "lifecycle": {
            "preStop": {
                "exec": {
                    "command": [
                        *config.vllm_command[:1],
                        "-c",
                        WAIT_FOR_GATEWAY,
                        DRAINED_FILE,
                        str(port),
                        f"http://{VLLM_HOST}:{config.vllm_port}/metrics",
                    ]
                }
            }
        },
    }


def gateway_env(md: ModelDeployment, config: OperatorConfig) -> list[dict[str, Any]]:
    """The gateway's environment: configured extras, then the operator's own (which win)."""
    own: dict[str, str] = {
        "PAITIENT_GATEWAY_PORT": str(config.gateway.port),
        "PAITIENT_UPSTREAM_URL": f"http://{VLLM_HOST}:{config.vllm_port}",
        "PAITIENT_MODELDEPLOYMENT_NAMESPACE": md.namespace,
        "PAITIENT_MODELDEPLOYMENT_NAME": md.name,
        "PAITIENT_SERVED_MODEL_NAME": md.served_model_name,
        # Where the key records, the pepper and the tiers are: the operator's own namespace.
        "PAITIENT_SYSTEM_NAMESPACE": config.system_namespace,
        "PAITIENT_TLS_CERT_FILE": TLS_CERT_FILE,
        "PAITIENT_TLS_KEY_FILE": TLS_KEY_FILE,
        # At SIGTERM (scaled down, replaced): drain, then tell vLLM's preStop hook.
        "PAITIENT_SHUTDOWN_DELAY_SECONDS": str(config.drain.shutdown_delay_seconds),
        "PAITIENT_SHUTDOWN_TIMEOUT_SECONDS": str(config.drain.shutdown_timeout_seconds),
        "PAITIENT_DRAINED_FILE": DRAINED_FILE,
    }
    if config.gateway.metrics_port is not None:
        own["PAITIENT_METRICS_PORT"] = str(config.gateway.metrics_port)
    limits = md.spec.rate_limits
    if limits.requests_per_minute is not None:
        own["PAITIENT_RATE_LIMIT_REQUESTS_PER_MINUTE"] = str(limits.requests_per_minute)
    if limits.tokens_per_minute is not None:
        own["PAITIENT_RATE_LIMIT_TOKENS_PER_MINUTE"] = str(limits.tokens_per_minute)
    # Always set: the gateway's own default is the same, but the pod spec then says it.
    own["PAITIENT_MAX_CHOICES"] = str(limits.max_choices or DEFAULT_MAX_CHOICES)
    if md.spec.runtime.max_model_len is not None:
        # Caps the gateway's default max_tokens (vLLM refuses more than the context).
        own["PAITIENT_MAX_MODEL_LEN"] = str(md.spec.runtime.max_model_len)
    store = store_env(md, config.store)
    owned = set(own) | {item["name"] for item in store}
    extras = {k: v for k, v in sorted(config.gateway.env.items()) if k not in owned}
    env = [_env(k, v) for k, v in extras.items()] + [_env(k, v) for k, v in own.items()]
    # The shared store of the limits: its password by reference, never in the pod spec.
    env += store
    # Usage is counted per pod: the pod's name keys the gateway's counters.
    env.append(
        {"name": "PAITIENT_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    )
    return env


def _gateway_container(md: ModelDeployment, config: OperatorConfig) -> dict[str, Any]:
    gw = config.gateway
    ports = [{"name": GATEWAY_PORT_NAME, "containerPort": gw.port, "protocol": "TCP"}]
    if gw.metrics_port is not None:
        ports.append(
            {"name": METRICS_PORT_NAME, "containerPort": gw.metrics_port, "protocol": "TCP"}
        )
    container: dict[str, Any] = {
        "name": GATEWAY_CONTAINER,
        "image": gw.image,
        "imagePullPolicy": config.image_pull_policy,
        "ports": ports,
        "env": gateway_env(md, config),
        "resources": gw.resources,
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": VOLUME_GATEWAY_TMP, "mountPath": POD_TMP},
            {"name": VOLUME_API_TOKEN, "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True},
            {"name": VOLUME_SERVING_TLS, "mountPath": TLS_DIR, "readOnly": True},
            {"name": VOLUME_LIFECYCLE, "mountPath": LIFECYCLE_DIR},
            *store_mounts(config.store),
        ],
        "startupProbe": _http_probe(
            PROBE_LIVE, gw.port, periodSeconds=2, timeoutSeconds=2, failureThreshold=30
        ),
        "livenessProbe": _http_probe(
            PROBE_LIVE, gw.port, periodSeconds=10, timeoutSeconds=2, failureThreshold=3
        ),
        "readinessProbe": _http_probe(
            PROBE_READY, gw.port, periodSeconds=5, timeoutSeconds=2, failureThreshold=2
        ),
    }
    if gw.command:
        container["command"] = list(gw.command)
    if gw.args:
        container["args"] = list(gw.args)
    return container


def _api_token_volume(config: OperatorConfig) -> dict[str, Any]:
    # The same three files as the default token mount, but only where it is mounted.
    token: dict[str, Any] = {
        "path": "token",
        "expirationSeconds": config.gateway.token_expiration_seconds,
    }
    if config.gateway.token_audience:
        token["audience"] = config.gateway.token_audience
    return {
        "name": VOLUME_API_TOKEN,
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": token},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                        ]
                    }
                },
            ],
        },
    }


def _volumes(md: ModelDeployment, config: OperatorConfig) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": VOLUME_MODEL_CACHE, "persistentVolumeClaim": {"claimName": md.name}},
        _memory_dir(VOLUME_VLLM_TMP, config.scratch_size_limit),
        _memory_dir(VOLUME_GATEWAY_TMP, config.scratch_size_limit),
        _memory_dir(VOLUME_SHM, config.shm_size_limit),
        _memory_dir(VOLUME_LIFECYCLE, "1Mi"),
        _api_token_volume(config),
        # Readable by the pod's group only (fsGroup); the kubelet swaps in renewed files.
        {
            "name": VOLUME_SERVING_TLS,
            "secret": {"secretName": serving_secret_name(md), "defaultMode": 0o440},
        },
        *store_volumes(md, config.store),
    ]
    pvc = md.spec.model.pvc_claim_and_path()
    if pvc is not None:
        volumes.append(
            {
                "name": VOLUME_MODEL_SOURCE,
                "persistentVolumeClaim": {"claimName": pvc[0], "readOnly": True},
            }
        )
    return volumes


def _strategy(md: ModelDeployment, config: OperatorConfig) -> dict[str, Any]:
    # A surge pod would need GPUs nobody has spare, or a ReadWriteOnce cache the old pod
    # holds: replace in place instead.
    if md.spec.use_gpu or config.model_cache_access_mode == "ReadWriteOnce":
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


class _FromSpec:
    """``replicas`` as the spec says (``spec.replicas``, 1 when unset)."""


FROM_SPEC: Final = _FromSpec()


def build_deployment(
    md: ModelDeployment, config: OperatorConfig, *, replicas: int | _FromSpec | None = FROM_SPEC
) -> Manifest:
    """The Deployment for ``md`` with ``replicas``: the spec's by default, the native
    autoscaler's decision, or None to leave them out (an HPA or KEDA owns them). Raises
    ``ForbiddenRuntimeArgument`` for a refused ``extraArgs``."""
    if isinstance(replicas, _FromSpec):
        replicas = md.spec.fixed_replicas
    pod_spec: dict[str, Any] = {
        "serviceAccountName": GATEWAY_ACCOUNT,  # the namespace's gateways share it
        "automountServiceAccountToken": False,
        # Draining (the gateway's delay and timeout) and flushing fit in the grace period.
        "terminationGracePeriodSeconds": config.drain.grace_period_seconds,
        "enableServiceLinks": False,  # no env vars describing other Services in the namespace
        "securityContext": pod_security_context(config),
        "containers": [_vllm_container(md, config), _gateway_container(md, config)],
        "volumes": _volumes(md, config),
    }
    if md.spec.use_gpu:
        pod_spec["tolerations"] = [
            {"key": config.gpu_resource_name, "operator": "Exists", "effect": "NoSchedule"}
        ]
        if md.spec.gpu_product:
            pod_spec["nodeSelector"] = {config.gpu_product_label: md.spec.gpu_product}
        if config.gpu_runtime_class_name:
            pod_spec["runtimeClassName"] = config.gpu_runtime_class_name
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in config.image_pull_secrets]

    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(md)},
        "revisionHistoryLimit": 3,
        # Past the startup budget, a rollout that made no progress is reported as such.
        "progressDeadlineSeconds": config.vllm_startup_timeout_seconds + 600,
        "strategy": _strategy(md, config),
        "template": {
            "metadata": {
                "labels": common_labels(md),
                "annotations": {"kubectl.kubernetes.io/default-container": VLLM_CONTAINER},
            },
            "spec": pod_spec,
        },
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(md),
        "spec": spec,
    }
