"""The store's Prometheus series, the same on the front door and every gateway."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class StoreMetrics:
    """``paitient_store_up`` (1 while the store answers) and ``paitient_store_outages_total``."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.up = Gauge(
            "paitient_store_up",
            "1 while the shared store answers; 0 while this process runs on its fallback.",
            registry=registry,
        )
        self.outages = Counter(
            "paitient_store_outages",
            "Times the shared store stopped answering after it had answered.",
            registry=registry,
        )

    def changed(self, available: bool) -> None:
        """``StoreHealth``'s callback."""
        self.up.set(1 if available else 0)
        if not available:
            self.outages.inc()
