"""Whether the shared store answers, said once per change: one log line (never a secret) and a
callback for the component's metric.

Every component that uses the store keeps one ``StoreHealth``; a failed call marks it down, a
successful probe marks it up. ``ever_up`` separates "not there yet" (a component that never
reached the store is not ready) from "gone for a while" (it serves on its fallback).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis import exceptions as rexc

from paitient_common.store.connection import UNREACHABLE, Store, describe_failure
from paitient_common.store.settings import StoreSettings

log = logging.getLogger("paitient.store")


class StoreHealth:
    """The store's state as this component last found it."""

    def __init__(
        self,
        settings: StoreSettings,
        while_down: str,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self.while_down = while_down  # what the component does meanwhile, for the log line
        self.on_change = on_change
        self.available = False
        self.ever_up = False
        self.reason: str | None = "not reached yet"
        self.outages = 0

    def up(self) -> bool:
        """The store answered; True when that is news."""
        if self.available:
            return False
        first = not self.ever_up
        self.available, self.ever_up, self.reason = True, True, None
        if first:
            log.info("shared store %s: connected", self.settings.describe())
        else:
            log.warning("shared store %s answers again", self.settings.describe())
        if self.on_change is not None:
            self.on_change(True)
        return True

    def down(self, exc: BaseException) -> bool:
        """A call failed with ``exc``; True when that is news (logged once per outage)."""
        reason = describe_failure(exc)
        if not self.available and self.reason == reason:
            return False
        was_up = self.available
        self.available, self.reason = False, reason
        if was_up:
            self.outages += 1
            log.error(
                "shared store %s unreachable: %s; %s until it answers",
                self.settings.describe(),
                reason,
                self.while_down,
            )
        else:
            log.error(
                "shared store %s: %s; not ready until it answers",
                self.settings.describe(),
                reason,
            )
        if self.on_change is not None and was_up:
            self.on_change(False)
        return True

    def status(self) -> str:
        """One word for readiness bodies: ``ok``, ``unreachable`` or ``not-connected``."""
        if self.available:
            return "ok"
        return "unreachable" if self.ever_up else "not-connected"


async def keep_probing(store: Store, health: StoreHealth, interval: float = 1.0) -> None:
    """PING every ``interval`` seconds, marking the store up or down, until cancelled (for a
    component whose own calls are too rare to notice the store come back)."""
    while True:
        try:
            await store.client.ping()
            health.up()
        except (*UNREACHABLE, rexc.ResponseError) as exc:
            health.down(exc)
        await asyncio.sleep(interval)
