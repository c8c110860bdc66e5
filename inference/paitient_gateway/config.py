"""The gateway's settings: the environment the operator gives the sidecar, plus local flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from paitient_common.informer import WatchSettings, watch_settings_from_env
from paitient_common.store.settings import StoreSettings, store_settings_from_env

DEFAULT_PORT: Final = 8443
DEFAULT_BODY_LIMIT: Final = 1024 * 1024
DEFAULT_LEDGER_DIR: Final = "/tmp/paitient-gateway/ledger"  # noqa: S108 - the pod's emptyDir
DEFAULT_SYSTEM_NAMESPACE: Final = "paitient-system"


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    return float(raw) if raw else default


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to start; ``from_env`` reads the operator's contract."""

    upstream_url: str
    served_model_name: str
    namespace: str
    deployment: str
    pod_name: str = "local"
    host: str = "0.0.0.0"  # noqa: S104 - the pod's only listener; set 127.0.0.1 for local runs
    port: int = DEFAULT_PORT
    metrics_port: int | None = None
    system_namespace: str = DEFAULT_SYSTEM_NAMESPACE
    deployment_requests_per_minute: int | None = None
    deployment_tokens_per_minute: int | None = None
    body_limit: int = DEFAULT_BODY_LIMIT
    connect_timeout: float = 5.0
    # Between two bytes from vLLM: a long generation is fine, a silent one is not.
    read_timeout: float = 120.0
    upstream_pool_size: int = 256
    default_max_tokens: int = 4096
    # The model's context length when the spec sets it; else learnt from vLLM's /v1/models.
    max_model_len: int | None = None
    ledger_dir: Path = field(default_factory=lambda: Path(DEFAULT_LEDGER_DIR))
    ledger_sync_interval: float = 0.05
    ledger_sync_batch: int = 64
    report_interval: float = 5.0
    watch: WatchSettings = field(default_factory=WatchSettings)
    keys_file: Path | None = None
    kubeconfig: str | None = None
    use_kubernetes: bool = True
    # The serving certificate (the operator mounts its Secret); plain HTTP only when asked for.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    insecure_plaintext: bool = False
    # The shared store (PAITIENT_STORE_URL, _PASSWORD, _CA_FILE); None: limits per replica.
    store: StoreSettings | None = None
    # How often the gateway beats in the store (and learns N, the share of each limit).
    store_heartbeat_interval: float = 1.0
    # At SIGTERM: serve this long while the Service lets go of the pod, then give requests and
    # streams in progress this long to finish (paitient_common.draining).
    shutdown_delay: float = 5.0
    shutdown_timeout: float = 300.0
    # Written once every request has ended and usage is flushed: the model server's preStop
    # hook waits for it, so vLLM outlives the last stream it serves.
    drained_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> GatewayConfig:
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "upstream_url": env.get("PAITIENT_UPSTREAM_URL", "http://127.0.0.1:8000"),
            "served_model_name": env.get("PAITIENT_SERVED_MODEL_NAME", "model"),
            "namespace": env.get("PAITIENT_MODELDEPLOYMENT_NAMESPACE", "default"),
            "deployment": env.get("PAITIENT_MODELDEPLOYMENT_NAME", "local"),
            "pod_name": env.get("PAITIENT_POD_NAME", "local"),
            "host": env.get("PAITIENT_GATEWAY_HOST", "0.0.0.0"),  # noqa: S104
            "port": _int(env, "PAITIENT_GATEWAY_PORT", DEFAULT_PORT),
            "metrics_port": _int(env, "PAITIENT_METRICS_PORT", None),
            "system_namespace": env.get("PAITIENT_SYSTEM_NAMESPACE", DEFAULT_SYSTEM_NAMESPACE),
            "deployment_requests_per_minute": _int(
                env, "PAITIENT_RATE_LIMIT_REQUESTS_PER_MINUTE", None
            ),
            "deployment_tokens_per_minute": _int(
                env, "PAITIENT_RATE_LIMIT_TOKENS_PER_MINUTE", None
            ),
            "body_limit": _int(env, "PAITIENT_BODY_LIMIT_BYTES", DEFAULT_BODY_LIMIT),
            "connect_timeout": _float(env, "PAITIENT_UPSTREAM_CONNECT_TIMEOUT", 5.0),
            "read_timeout": _float(env, "PAITIENT_UPSTREAM_READ_TIMEOUT", 120.0),
            "default_max_tokens": _int(env, "PAITIENT_DEFAULT_MAX_TOKENS", 4096),
            "max_model_len": _int(env, "PAITIENT_MAX_MODEL_LEN", None),
            "ledger_dir": Path(env.get("PAITIENT_LEDGER_DIR", DEFAULT_LEDGER_DIR)),
            "report_interval": _float(env, "PAITIENT_USAGE_REPORT_INTERVAL", 5.0),
            "watch": watch_settings_from_env(env),
            "tls_cert_file": _path(env, "PAITIENT_TLS_CERT_FILE"),
            "tls_key_file": _path(env, "PAITIENT_TLS_KEY_FILE"),
            "store": store_settings_from_env(env),
            "store_heartbeat_interval": _float(env, "PAITIENT_STORE_HEARTBEAT_SECONDS", 1.0),
            "shutdown_delay": _float(env, "PAITIENT_SHUTDOWN_DELAY_SECONDS", 5.0),
            "shutdown_timeout": _float(env, "PAITIENT_SHUTDOWN_TIMEOUT_SECONDS", 300.0),
            "drained_file": _path(env, "PAITIENT_DRAINED_FILE"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)  # type: ignore[arg-type]
        config.check_transport()
        return config

    def check_transport(self) -> None:
        """TLS needs both files; without them the gateway starts only if told to go plain."""
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("PAITIENT_TLS_CERT_FILE and PAITIENT_TLS_KEY_FILE go together")
        if self.tls_cert_file is None and not self.insecure_plaintext:
            raise ValueError(
                "no serving certificate: set PAITIENT_TLS_CERT_FILE and PAITIENT_TLS_KEY_FILE "
                "(the operator mounts them in every model pod), or pass --insecure-plaintext "
                "for a local run that carries no patient data"
            )
