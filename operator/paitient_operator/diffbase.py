"""Where kopf keeps "the spec I last handled": in the operator's memory, not in an annotation.

kopf compares each object with the last state it handled to tell a creation from an update
from a status-only change. By default it stores that state in an annotation, which costs one
patch per handled change and, worse, can be misread: when the watch lags behind (hundreds of
ModelDeployments at once), kopf is handed copies older than its own patch, takes them for new
objects and handles them again, writing long after everything is Ready.

Our reconcilers are level-based and idempotent, so losing this memory on a restart costs only
a reconcile per object (which the resume handlers run anyway) and never a wrong result.
"""

from __future__ import annotations

import kopf


class InMemoryDiffBaseStorage(kopf.DiffBaseStorage):
    """The last handled essence per object uid, for the life of the process."""

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, kopf.BodyEssence] = {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._essences.get(str(body.metadata.uid))

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self._essences[str(body.metadata.uid)] = essence

    def forget(self, uid: str) -> None:
        """Drop a deleted object's entry."""
        self._essences.pop(uid, None)

    def __len__(self) -> int:
        return len(self._essences)
