"""``90d``, ``12h``, ``30m`` -> timedelta (pure), for ``keys create --expires``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
_DURATION = re.compile(r"^(\d{1,5})([dhmw])$")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive number and a unit, e.g. 90d, 12h, 30m, 4w"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
