"""Short durations such as ``90d``, ``12h``, ``30m`` -> ``timedelta`` (pure).

Used for ``paitient keys create --expires 90d`` and anywhere else a person types a duration.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

_UNITS: Final = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
# ASCII digits only: ``\d`` would also take e.g. Arabic-Indic digits, which int() accepts.
# Units are lowercase only, so ``M`` can never be misread as months.
_DURATION: Final = re.compile(r"([0-9]{1,6})([wdhms])")
# Ten years: far beyond any sensible key lifetime, and far from datetime's year-9999 overflow.
DEFAULT_MAXIMUM: Final = timedelta(days=3660)


def parse_duration(text: str, *, maximum: timedelta | None = DEFAULT_MAXIMUM) -> timedelta:
    """A positive duration: a whole number and one unit (``w``, ``d``, ``h``, ``m``, ``s``).

    Raises ``ValueError`` with a message fit to show the person who typed it.
    """
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive whole number and one unit "
            "(w, d, h, m or s), e.g. 90d, 12h, 30m"
        )
    value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if maximum is not None and value > maximum:
        raise ValueError(f"duration {text!r} is longer than the maximum of {maximum.days} days")
    return value


def format_duration(value: timedelta) -> str:
    """``timedelta(days=30)`` -> ``30d``: the largest unit that divides it (``parse_duration``'s
    inverse for whole seconds)."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
