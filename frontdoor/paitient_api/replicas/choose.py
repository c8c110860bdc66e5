"""The order in which a request tries a deployment's Ready replicas, by strategy (pure).

The first is where the request goes; the rest are where it goes if that one refuses the
connection (nothing was sent yet, so trying the next is safe).

- ``prefix``: the walk round the hash ring from the request's key, from the first replica
  within the load bound (``ring.bounded``). Same tenant, same leading text: same replica, as
  long as it is not overloaded.
- ``least-load``: by load, fewest first; equal loads in the order of the walk from the key, so
  ties spread over the replicas and a prefix keeps some affinity when loads are even.
- ``round-robin``: each replica in turn (what a Service does), the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from paitient_api.replicas.ring import bounded, ring_of


def order(
    strategy: str,
    names: Sequence[str],
    loads: Mapping[str, int],
    key: int,
    bound: float,
    turn: int = 0,
) -> list[str]:
    """``names`` in the order to try them."""
    if not names:
        return []
    if strategy == "round-robin":
        ordered = sorted(names)
        start = turn % len(ordered)
        return ordered[start:] + ordered[:start]
    walk = ring_of(names).walk(key)
    if strategy == "least-load":
        position = {name: index for index, name in enumerate(walk)}
        return sorted(walk, key=lambda name: (loads.get(name, 0), position[name]))
    return bounded(walk, loads, bound)
