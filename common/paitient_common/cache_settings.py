"""The watch-fed caches' settings, shared by the gateway's and the front door's settings models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from paitient_common.informer import WatchSettings
from paitient_common.settings import Env, ShownDefault

_DEFAULT = WatchSettings()


def _timeout_range(value: Any) -> Any:
    """``"15-25"`` or ``"20"`` -> ``(15, 25)`` or ``(20, 20)``; anything else left to pydantic."""
    if isinstance(value, int):
        return (value, value)
    if not isinstance(value, str):
        return value
    low, dash, high = value.strip().partition("-")
    bounds = (low, high if dash else low)
    if not all(b.strip().isdigit() for b in bounds) or not 1 <= int(bounds[0]) <= int(bounds[1]):
        raise ValueError("expected N or A-B seconds with 1 <= A <= B, e.g. 15-25")
    return (int(bounds[0]), int(bounds[1]))


class CacheSettings(BaseModel):
    """How the key, tenant and access-list caches watch the API (see docs/caches.md)."""

    watch_timeout_seconds: Annotated[
        tuple[int, int],
        BeforeValidator(_timeout_range),
        Env("PAITIENT_WATCH_TIMEOUT_SECONDS"),
        ShownDefault(f"`{_DEFAULT.timeout_min}-{_DEFAULT.timeout_max}`"),
    ] = Field(
        default=(_DEFAULT.timeout_min, _DEFAULT.timeout_max),
        description="Each watch is ended by the API server after a random time in this range "
        "(A-B seconds, or one number), so replicas do not reconnect in step.",
    )
    watch_read_grace_seconds: Annotated[float, Env("PAITIENT_WATCH_READ_GRACE_SECONDS")] = Field(
        default=_DEFAULT.read_grace,
        gt=0,
        description="A watch silent this long past its timeout is deemed stalled and restarted.",
    )
    cache_stale_seconds: Annotated[float, Env("PAITIENT_CACHE_STALE_SECONDS")] = Field(
        default=_DEFAULT.stale_after,
        gt=0,
        description="A cache not known current for this long is stale: readiness fails.",
    )

    @property
    def watch(self) -> WatchSettings:
        low, high = self.watch_timeout_seconds
        return WatchSettings(
            timeout_min=low,
            timeout_max=high,
            read_grace=self.watch_read_grace_seconds,
            stale_after=self.cache_stale_seconds,
        )
