"""Scale from zero, as the front door and the operator agree on it (pure).

A request for a deployment that autoscales and has no ready replica is held by the front door,
which asks for a replica by writing a new token into the annotation ``WAKE_ANNOTATION`` of the
ModelDeployment. The operator's autoscaler counts a token it has not seen before as demand for
one replica (timed by its own clock: the token's text is never read as a time), so several
front doors and several requests waking one deployment ask once each and start one replica.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, Final

WAKE_ANNOTATION: Final = "paitient.ai/wake-requested"
# Phases in which a request is worth holding: the deployment has or will have a replica.
HOLDABLE_PHASES: Final = frozenset({"ScaledToZero", "Progressing", "Pending"})


def wake_token() -> str:
    """A new token: the time helps a human reading the object, the random part keeps two
    front doors' tokens apart."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}-{secrets.token_hex(4)}"


def wake_patch(token: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {WAKE_ANNOTATION: token}}}


def wake_token_of(md: Mapping[str, Any]) -> str | None:
    annotations = (md.get("metadata") or {}).get("annotations") or {}
    token = annotations.get(WAKE_ANNOTATION)
    return str(token) if token else None


def ready_replicas(md: Mapping[str, Any]) -> int:
    return int((md.get("status") or {}).get("readyReplicas") or 0)


def scales_from_zero(md: Mapping[str, Any]) -> bool:
    """Whether the deployment's autoscaler may take it to zero and bring it back on a
    request: ``spec.autoscaling`` with ``minReplicas: 0``, driven by the operator or KEDA (an
    HPA cannot leave zero by itself)."""
    autoscaling = (md.get("spec") or {}).get("autoscaling")
    if not isinstance(autoscaling, Mapping):
        return False
    return int(autoscaling.get("minReplicas", 1)) == 0 and autoscaling.get("engine") != "hpa"


def holdable(md: Mapping[str, Any]) -> bool:
    """A request for ``md`` should wait for a replica rather than fail: it scales from zero,
    has no ready replica, and is not refused (Failed) or losing replicas (Degraded)."""
    phase = (md.get("status") or {}).get("phase") or "Pending"
    return scales_from_zero(md) and ready_replicas(md) == 0 and phase in HOLDABLE_PHASES
