"""The gateway's settings: the environment the operator renders for the sidecar
(``paitient_operator.builders.deployment.gateway_env``), plus flags for local runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

from pydantic import Field, model_validator

from paitient_common.cache_settings import CacheSettings
from paitient_common.settings import Env, Flag, Settings
from paitient_common.store.settings import SharedStoreSettings

DEFAULT_PORT: Final = 8443
DEFAULT_BODY_LIMIT: Final = 1024 * 1024
DEFAULT_LEDGER_DIR: Final = "/tmp/paitient-gateway/ledger"  # noqa: S108 - the pod's emptyDir
DEFAULT_SYSTEM_NAMESPACE: Final = "paitient-system"

Port = Annotated[int, Field(ge=1, le=65535)]


class GatewayConfig(CacheSettings, SharedStoreSettings, Settings):
    """Everything the gateway needs to start (``paitient_common.settings.load`` builds it)."""

    upstream_url: Annotated[str, Flag("--upstream-url")] = Field(
        default="http://127.0.0.1:8000", description="vLLM's base URL (in the pod: 127.0.0.1)."
    )
    served_model_name: Annotated[str, Flag("--served-model-name")] = Field(
        default="model", description="The model name vLLM serves, which requests name."
    )
    namespace: Annotated[str, Env("PAITIENT_MODELDEPLOYMENT_NAMESPACE")] = Field(
        default="default",
        description="Namespace of this ModelDeployment: only the tenant that owns it (or one "
        "its access list names) is let in.",
    )
    deployment: Annotated[str, Env("PAITIENT_MODELDEPLOYMENT_NAME")] = Field(
        default="local", description="Name of this ModelDeployment (its UsageReports, its limits)."
    )
    pod_name: str = Field(
        default="local",
        description="This pod's name, which keys its usage counters (the operator sets it from "
        "metadata.name).",
    )
    host: Annotated[str, Flag("--host"), Env("PAITIENT_GATEWAY_HOST")] = Field(
        default="0.0.0.0",  # noqa: S104 - the pod's only listener; 127.0.0.1 for local runs
        description="Listen address.",
    )
    port: Annotated[Port, Flag("--port"), Env("PAITIENT_GATEWAY_PORT")] = Field(
        default=DEFAULT_PORT, description="Listen port (TLS unless --insecure-plaintext)."
    )
    metrics_port: Port | None = Field(
        default=None,
        description="A second, plain-HTTP port for Prometheus; metrics are on `port` as well.",
    )
    system_namespace: str = Field(
        default=DEFAULT_SYSTEM_NAMESPACE,
        description="Namespace of the key records, the pepper and the tiers (the operator's).",
    )
    deployment_requests_per_minute: Annotated[
        int | None, Env("PAITIENT_RATE_LIMIT_REQUESTS_PER_MINUTE")
    ] = Field(default=None, ge=0, description="Requests per minute for this deployment (all pods).")
    deployment_tokens_per_minute: Annotated[
        int | None, Env("PAITIENT_RATE_LIMIT_TOKENS_PER_MINUTE")
    ] = Field(default=None, ge=0, description="Tokens per minute for this deployment (all pods).")
    body_limit: Annotated[int, Env("PAITIENT_BODY_LIMIT_BYTES")] = Field(
        default=DEFAULT_BODY_LIMIT, ge=0, description="Largest request body, in bytes."
    )
    connect_timeout: Annotated[float, Env("PAITIENT_UPSTREAM_CONNECT_TIMEOUT")] = Field(
        default=5.0, gt=0, description="Seconds to connect to vLLM."
    )
    read_timeout: Annotated[float, Env("PAITIENT_UPSTREAM_READ_TIMEOUT")] = Field(
        default=120.0,
        gt=0,
        # Between two bytes from vLLM: a long generation is fine, a silent one is not.
        description="Seconds vLLM may stay silent between two bytes of a response.",
    )
    upstream_pool_size: int = Field(default=256, ge=1, description="Connections kept open to vLLM.")
    default_max_tokens: int = Field(
        default=4096, ge=0, description="max_tokens of a request that sets none."
    )
    max_model_len: int | None = Field(
        default=None,
        ge=0,
        description="The model's context length (the spec's maxModelLen); learnt from vLLM's "
        "/v1/models when unset.",
    )
    ledger_dir: Annotated[Path, Flag("--ledger-dir")] = Field(
        default=Path(DEFAULT_LEDGER_DIR), description="Directory of the usage ledger."
    )
    ledger_sync_interval: float = Field(
        default=0.05, gt=0, description="Seconds between two fsyncs of the ledger."
    )
    ledger_sync_batch: int = Field(
        default=64, ge=1, description="Ledger lines that trigger an fsync before the interval."
    )
    report_interval: Annotated[float, Env("PAITIENT_USAGE_REPORT_INTERVAL")] = Field(
        default=5.0, gt=0, description="Seconds between two UsageReport writes."
    )
    keys_file: Annotated[Path | None, Flag("--keys-file"), Env(None)] = Field(
        default=None,
        description="Keys, tenants and pepper from this JSON file instead of the API (local "
        "runs, tests).",
    )
    kubeconfig: Annotated[str | None, Flag("--kubeconfig"), Env(None)] = Field(
        default=None,
        description="kubeconfig of the cluster (default in-cluster); with --keys-file, where "
        "usage reports go (none when unset).",
    )
    # The serving certificate (the operator mounts its Secret); plain HTTP only when asked for.
    tls_cert_file: Path | None = Field(
        default=None, description="Serving certificate (PEM chain); reloaded when it changes."
    )
    tls_key_file: Path | None = Field(default=None, description="The certificate's private key.")
    insecure_plaintext: Annotated[bool, Flag("--insecure-plaintext"), Env(None)] = Field(
        default=False,
        description="Serve plain HTTP without a certificate (local tests only: never in a "
        "model pod).",
    )

    store_heartbeat_interval: Annotated[float, Env("PAITIENT_STORE_HEARTBEAT_SECONDS")] = Field(
        default=1.0,
        gt=0,
        description="Seconds between two heartbeats in the shared store, by which the gateway "
        "learns N, the replicas sharing each limit.",
    )

    @model_validator(mode="after")
    def _transport(self) -> GatewayConfig:
        """TLS needs both files; without them the gateway starts only if told to go plain."""
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("PAITIENT_TLS_CERT_FILE and PAITIENT_TLS_KEY_FILE go together")
        if self.tls_cert_file is None and not self.insecure_plaintext:
            raise ValueError(
                "no serving certificate: set PAITIENT_TLS_CERT_FILE and PAITIENT_TLS_KEY_FILE "
                "(the operator mounts them in every model pod), or pass --insecure-plaintext "
                "for a local run that carries no patient data"
            )
        return self
