"""Prometheus metrics of the operator: how often it reconciles, what it writes, how long it takes.

Labels are bounded: a kind and an outcome, never an object's name.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "paitient_operator_reconciles_total",
    "Reconciles run, by kind and result (ok, refused, error).",
    ["kind", "result"],
)
CHILD_WRITES = Counter(
    "paitient_operator_child_writes_total",
    "Child objects written, by child kind and outcome (created, updated).",
    ["child_kind", "outcome"],
)
STATUS_WRITES = Counter(
    "paitient_operator_status_writes_total", "Status patches sent, by kind.", ["kind"]
)
RECONCILE_SECONDS = Histogram(
    "paitient_operator_reconcile_duration_seconds",
    "Wall time of one reconcile.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LEADER = Gauge(
    "paitient_operator_leader",
    "1 while this replica holds the operator's Lease and reconciles, 0 while it stands by.",
)
# Set while this replica reconciles: only then does it report the observed state
# (observed_metrics), so a standby's series never read as "0 deployments Ready".
LEADING = threading.Event()


def set_leading(leading: bool) -> None:
    """This replica leads (reconciles) or stands by: the gauge and the flag together."""
    LEADER.set(1 if leading else 0)
    if leading:
        LEADING.set()
    else:
        LEADING.clear()


STARTUP_VERIFIED_SECONDS = Gauge(
    "paitient_operator_startup_verified_seconds",
    "Seconds from the start of the ModelDeployment controller until it had reconciled every "
    "ModelDeployment once (0 until then).",
)
