"""Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam, 2016), as pure
functions.

The ring is a function of the endpoints' names alone: every front door that sees the same Ready
endpoints builds the same ring and sends a key to the same replica, without talking to the
others. Each endpoint owns ``VNODES`` points, so adding or removing one of n endpoints moves
about 1/n of the keys, all of them to or from that endpoint. ``bounded`` walks the ring from a
key and takes the first endpoint whose load, with this request, stays within ``bound`` times
the mean: a popular prefix spills to the next replica instead of piling on one.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

VNODES: Final = 128


def stable_hash(text: str) -> int:
    """64 bits of BLAKE2b: the same in every process (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class HashRing:
    """Sorted points on a 64-bit circle and the endpoint owning each."""

    points: tuple[int, ...]
    owners: tuple[str, ...]
    names: tuple[str, ...]

    def walk(self, key: int) -> list[str]:
        """Every endpoint once, in the order met going clockwise from ``key``."""
        if not self.points:
            return []
        start = bisect.bisect_left(self.points, key)
        seen: dict[str, None] = {}
        count = len(self.points)
        for step in range(count):
            seen.setdefault(self.owners[(start + step) % count])
            if len(seen) == len(self.names):
                break
        return list(seen)


@lru_cache(maxsize=256)
def _ring(names: tuple[str, ...], vnodes: int) -> HashRing:
    placed = sorted((stable_hash(f"{name}#{i}"), name) for name in names for i in range(vnodes))
    return HashRing(tuple(p for p, _ in placed), tuple(n for _, n in placed), names)


def ring_of(names: Iterable[str], vnodes: int = VNODES) -> HashRing:
    """The ring of these endpoints (cached: the same names make the same ring)."""
    return _ring(tuple(sorted(set(names))), vnodes)


def capacity(loads: Iterable[int], bound: float) -> int:
    """The most load one endpoint may hold once this request is placed:
    ``ceil(bound * (total + 1) / n)``. At least one endpoint always has room (the least loaded
    is at most the mean, and the mean is below this)."""
    values = list(loads)
    return math.ceil(bound * (sum(values) + 1) / len(values)) if values else 0


def bounded(order: Sequence[str], loads: Mapping[str, int], bound: float) -> list[str]:
    """``order`` from the first endpoint that has room for one more request, the walk going on
    round the ring after it (the next to try if that one refuses the connection)."""
    room = capacity((loads.get(name, 0) for name in order), bound)
    for index, name in enumerate(order):
        if loads.get(name, 0) + 1 <= room:
            return [*order[index:], *order[:index]]
    return list(order)  # unreachable with whole loads: capacity() leaves the least loaded room
