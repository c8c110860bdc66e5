"""The front door's settings: flags (the chart passes them), ``PAITIENT_API_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from paitient_api.routing import IN_CLUSTER
from paitient_common.cache_settings import CacheSettings
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP
from paitient_common.settings import Env, Flag, Settings
from paitient_common.store.settings import SharedStoreSettings


class FrontDoorSettings(CacheSettings, SharedStoreSettings, Settings):
    """Everything ``paitient-api`` needs to start (``paitient_common.settings.load`` builds it)."""

    model_config = SettingsConfigDict(env_prefix="PAITIENT_API_")

    host: Annotated[str, Flag("--host")] = Field(
        default="0.0.0.0",  # noqa: S104 - the pod's listener
        description="Listen address.",
    )
    port: Annotated[int, Flag("--port")] = Field(
        default=8080, ge=1, le=65535, description="Listen port."
    )
    kubeconfig: Annotated[str | None, Flag("--kubeconfig"), Env("KUBECONFIG")] = Field(
        default=None, description="kubeconfig of the cluster; in-cluster credentials when unset."
    )
    system_namespace: Annotated[
        str, Flag("--system-namespace"), Env("PAITIENT_SYSTEM_NAMESPACE")
    ] = Field(
        default="paitient-system",
        description="Namespace of the key records, the pepper, the tiers and the gateways' CA "
        "bundle (the operator's).",
    )
    gateway_url: Annotated[str, Flag("--gateway-url")] = Field(
        default=IN_CLUSTER,
        description="Template of a deployment's gateway URL ({name}, {namespace}); default the "
        "in-cluster Services.",
    )
    gateway_ca_configmap: Annotated[str, Flag("--gateway-ca-configmap")] = Field(
        default=CA_BUNDLE_CONFIGMAP,
        description="ConfigMap (system namespace, key ca.crt) of the CAs the gateways' "
        "certificates must chain to.",
    )
    tls_cert_file: Annotated[Path | None, Flag("--tls-cert-file")] = Field(
        default=None,
        description="Serve HTTPS with this certificate (PEM chain, reloaded when it changes); "
        "plain HTTP without it.",
    )
    tls_key_file: Annotated[Path | None, Flag("--tls-key-file")] = Field(
        default=None, description="The certificate's private key (PEM)."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> FrontDoorSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("--tls-cert-file and --tls-key-file go together")
        return self
