"""Logging rules every server shares: nothing that could quote a request reaches a log."""

from __future__ import annotations

import logging
import traceback

# Frames of an unexpected exception that are logged: enough to find the line, no more.
_FRAMES_LOGGED = 5


def quiet_http_parser_logs() -> None:
    """aiohttp's low-level server logger quotes raw request bytes when a request cannot be
    parsed (an over-long header line, say), and a header may hold an API key. The request is
    answered 400 either way; the log line is not worth the leak."""
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL + 1)


def describe_unexpected(exc: BaseException) -> str:
    """``ValueError at translate.py:40 _usage; ...``: the type and where it was raised, never
    the message or a chained exception's, since either may quote a prompt or a completion."""
    frames = traceback.extract_tb(exc.__traceback__)[-_FRAMES_LOGGED:]
    where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames)
    return f"{type(exc).__name__} at {where or 'an unknown place'}"


def log_unexpected(logger: logging.Logger, exc: BaseException, context: str) -> None:
    """Log an unexpected exception as ``unexpected <type> at <frames> (<context>)``; the
    context must be fixed text (a route template, not a path a caller chose)."""
    logger.error("unexpected %s (%s)", describe_unexpected(exc), context)
