"""The audit trail: one JSON line per request on a dedicated logger, never any content.

The record is built from a fixed list of fields (ids, counts, times), so a prompt, completion or
key cannot reach it by accident: nothing in the gateway passes request or response text here.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TextIO

AUDIT_LOGGER: Final = "paitient.audit"


@dataclass
class AuditRecord:
    request_id: str
    route: str
    deployment: str
    tenant: str | None = None
    client_id: str | None = None
    key_id: str | None = None
    status: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    error_type: str | None = None


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def audit_logger(stream: TextIO | None = None) -> logging.Logger:
    """The audit logger, writing bare JSON lines to ``stream`` (stdout) and nowhere else."""
    logger = logging.getLogger(AUDIT_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(_LineFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the audit trail is not application logging
    return logger


def write_audit(logger: logging.Logger, record: AuditRecord) -> None:
    # vars() rather than dataclasses.asdict: asdict deep-copies, and this runs per request.
    line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **vars(record)}
    line["latency_ms"] = round(record.latency_ms, 2)
    logger.info("%s", json.dumps(line, separators=(",", ":")))
