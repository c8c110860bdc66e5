"""``python -m paitient_localcluster.stack up|down|demo`` (``make up``, ``make down``,
``make demo``): see ``lifecycle``."""

from __future__ import annotations

import sys

from .lifecycle import main

sys.exit(main())
