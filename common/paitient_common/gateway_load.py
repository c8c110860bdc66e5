"""What a gateway says of its load at ``GET /healthz/load``, read by every front door's replica
picker and by the operator's autoscaler (pure): the figures that count across front-door
replicas come from the gateway itself, which sees every caller's requests, not from one front
door's own count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

LOAD_PATH: Final = "/healthz/load"


def _count(value: Any) -> float | None:
    """A non-negative finite number, or None (what the model server did not report)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


@dataclass(frozen=True)
class GatewayLoad:
    """One gateway's load now.

    ``in_flight``: completion and chat requests the gateway serves (a stream until its last
    byte), from any front door or direct caller; ``running`` / ``waiting``: vLLM's own
    ``vllm:num_requests_running`` / ``vllm:num_requests_waiting`` (None while vLLM does not
    answer); ``draining``: the gateway got SIGTERM and finishes what it serves (its replica is
    leaving: an autoscaler counts it as gone).
    """

    in_flight: int
    running: float | None = None
    waiting: float | None = None
    draining: bool = False

    @property
    def score(self) -> float:
        """The load a picker compares: requests in flight, plus each one vLLM holds in its queue
        once more (a queued request is in flight and also delays the next one)."""
        return self.in_flight + (self.waiting or 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "inFlight": self.in_flight,
            "running": self.running,
            "waiting": self.waiting,
            "draining": self.draining,
        }

    @classmethod
    def from_json(cls, body: Any) -> GatewayLoad | None:
        """The load in a gateway's answer; None when the answer is not one."""
        if not isinstance(body, dict):
            return None
        in_flight = _count(body.get("inFlight"))
        if in_flight is None:
            return None
        return cls(
            int(in_flight),
            _count(body.get("running")),
            _count(body.get("waiting")),
            body.get("draining") is True,
        )
