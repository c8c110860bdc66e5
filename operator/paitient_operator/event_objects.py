"""A Kubernetes Event about an object, as the operator posts it outside kopf's handlers (pure).

kopf posts Events from its handlers through a queue its own event loop drains; a thread of the
operator's own (the autoscaler's pass) has no such queue, so it writes this object itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from paitient_operator.conditions import format_time

COMPONENT = "paitient-operator"


def build_event(
    obj: dict[str, Any], type_: str, reason: str, message: str, now: datetime | None = None
) -> dict[str, Any]:
    """A ``v1`` Event on ``obj`` (``generateName``: the API server names it)."""
    meta = obj["metadata"]
    stamp = format_time(now or datetime.now(UTC))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
