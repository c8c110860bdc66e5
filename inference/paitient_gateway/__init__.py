"""The gateway sidecar: the only listener in a model pod (auth, limits, metering, audit)."""

from __future__ import annotations

from paitient_common.keycache.directory import Directory, FileKeySource
from paitient_common.keycache.kubernetes_source import KubernetesKeySource
from paitient_gateway.app import create_app
from paitient_gateway.config import GatewayConfig
from paitient_gateway.ledger import UsageLedger
from paitient_gateway.state import Gateway

__all__ = [
    "Directory",
    "FileKeySource",
    "Gateway",
    "GatewayConfig",
    "KubernetesKeySource",
    "UsageLedger",
    "create_app",
]
