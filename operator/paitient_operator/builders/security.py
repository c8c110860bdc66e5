"""The locked-down security contexts every model pod and container gets (Pod Security
``restricted``), in one place so no builder can forget a field."""

from __future__ import annotations

from typing import Any

from paitient_operator.config import OperatorConfig


def pod_security_context(config: OperatorConfig) -> dict[str, Any]:
    """Pod level: non-root with an explicit UID (vLLM's image defaults to root, which
    ``runAsNonRoot`` alone would refuse to start), seccomp RuntimeDefault, volumes group-owned."""
    return {
        "runAsNonRoot": True,
        "runAsUser": config.run_as_user,
        "runAsGroup": config.run_as_group,
        "fsGroup": config.fs_group,
        "fsGroupChangePolicy": "OnRootMismatch",  # a large model cache is not re-chowned per start
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container level: read-only root, no capabilities, no privilege escalation."""
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
