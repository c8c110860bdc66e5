"""Logging rules every server shares: nothing that could quote a request reaches a log."""

from __future__ import annotations

import logging


def quiet_http_parser_logs() -> None:
    """aiohttp's low-level server logger quotes raw request bytes when a request cannot be
    parsed (an over-long header line, say), and a header may hold an API key. The request is
    answered 400 either way; the log line is not worth the leak."""
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL + 1)
