"""The replica picker's series on the front door's registry (bounded labels: the strategy, the
kind of choice, the reason for a fallback; no deployment, tenant or replica label)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

PICKS: Final = Counter(
    "paitient_api_routing_picks",
    "Requests given a replica, by strategy and choice: first (the strategy's own pick) or "
    "spilled (prefix: the ring's replica was at the load bound, the next one took it).",
    ["strategy", "choice"],
)
FALLBACKS: Final = Counter(
    "paitient_api_routing_fallbacks",
    "refused: a replica refused the connection (nothing sent) and the next one was tried; "
    "service: no Ready replica known from the EndpointSlices, the request went to the Service.",
    ["reason"],
)
LOAD_RATIO: Final = Histogram(
    "paitient_api_routing_load_ratio",
    "The picked replica's load with the new request, over the most the deployment's load bound "
    "allows one replica (ceil(bound * (total + 1) / replicas)): at most 1 within the bound.",
    ["strategy"],
    buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0),
)
