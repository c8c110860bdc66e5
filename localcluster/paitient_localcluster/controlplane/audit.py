"""The API server's audit log: who asked what of the API (tests and benchmarks count with it).

The policy logs, at Metadata level (no request or response bodies), every request of identities
that are not the control plane's own, so the log holds the requests of the operator, the CLI and
the tests, and nothing of the controller manager, scheduler or KWOK.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "None",
            "users": [
                "system:kube-controller-manager",
                "system:kube-scheduler",
                "system:apiserver",
                "paitient-kwok",
            ],
        },
        {"level": "None", "userGroups": ["system:serviceaccounts:kube-system", "system:nodes"]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version"]},
        {"level": "Metadata"},
    ],
}


@dataclass(frozen=True)
class AuditEvent:
    """One completed request, as the audit log tells it."""

    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    message: str = ""  # the API server's message, on failures
    received: datetime | None = None  # when the API server got the request
    completed: datetime | None = None  # when it finished answering

    @property
    def refused_by_rbac(self) -> bool:
        """A 403 from authorization, not one from admission (e.g. a namespace that is being
        terminated refuses new objects with 403 too)."""
        return self.code == 403 and "being terminated" not in self.message

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


def read_events(log: Path, offset: int = 0) -> Iterator[AuditEvent]:
    """Events from byte ``offset`` on (see ``log_size``), completed requests only."""
    if not log.is_file():
        return
    with log.open("rb") as fh:
        fh.seek(offset)
        for line in fh:
            yield from _parse(line)


def log_size(log: Path) -> int:
    """Current end of the log: pass it to ``read_events`` to see only what comes after."""
    return log.stat().st_size if log.is_file() else 0


def writes_by(events: Iterable[AuditEvent], user: str) -> list[AuditEvent]:
    return [e for e in events if e.user == user and e.is_write]


def _parse(line: bytes) -> Iterator[AuditEvent]:
    try:
        raw = json.loads(line)
    except ValueError:
        return
    if raw.get("stage") != "ResponseComplete":
        return
    ref = raw.get("objectRef") or {}
    yield AuditEvent(
        user=raw.get("user", {}).get("username", ""),
        verb=raw.get("verb", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=int(raw.get("responseStatus", {}).get("code", 0)),
        message=str(raw.get("responseStatus", {}).get("message", "")),
        received=_time(raw.get("requestReceivedTimestamp")),
        completed=_time(raw.get("stageTimestamp")),
    )


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
