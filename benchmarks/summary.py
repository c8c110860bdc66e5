"""The last line every benchmark prints: one JSON object naming the benchmark and saying whether
it was a ``--smoke`` run (a handful of objects or requests, seconds), which
``tests/benchmarks/test_smoke.py`` reads for every ``benchmarks/bench_*.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def print_summary(script: str, smoke: bool, **figures: Any) -> None:
    """``{"benchmark": <script's stem>, "smoke": ..., **figures}`` on one line, flushed."""
    print(json.dumps({"benchmark": Path(script).stem, "smoke": smoke, **figures}), flush=True)
